package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/restclient"
)

// defaultServer is where seatctl looks without -server or
// SEATBROKER_SERVER.
const defaultServer = "http://127.0.0.1:8080"

// rest is a client of the REST API under /api/v1.
type rest struct {
	restclient.Client
}

// apiError is an error answer of the API.
type apiError = restclient.Error

// restFlags adds -server and -token (env SEATBROKER_SERVER,
// SEATBROKER_TOKEN) to fs; call the returned function after parsing.
func restFlags(fs *flag.FlagSet) func() *rest {
	server := fs.String("server", envOr("SEATBROKER_SERVER", defaultServer), "the node's address (env SEATBROKER_SERVER)")
	token := fs.String("token", "", "a client token from seatctl login (env SEATBROKER_TOKEN)")
	return func() *rest {
		secretFromEnv(fs, "token", "SEATBROKER_TOKEN", token)
		return &rest{restclient.Client{Base: strings.TrimSuffix(*server, "/") + "/api/v1", Token: *token,
			HTTP: &http.Client{Timeout: 30 * time.Second}}}
	}
}

// secretFromEnv sets *v from the environment variable env when the flag
// name was not given. A secret is never a flag's default: -h and every
// flag error print the defaults.
func secretFromEnv(fs *flag.FlagSet, name, env string, v *string) {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	if !set {
		*v = os.Getenv(env)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// do sends in as JSON (when not nil) and decodes the answer into out
// (when not nil); an unauthorized answer says how to sign in.
func (c *rest) do(ctx context.Context, method, path string, in, out any) error {
	err := c.Do(ctx, method, path, in, out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Detail.Code == protocol.CodeUnauthorized {
		return fmt.Errorf("%w (sign in with `seatctl login` and set SEATBROKER_TOKEN)", err)
	}
	return err
}

// parseAll parses flags wherever they stand among the arguments, and
// returns the arguments.
func parseAll(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// errUsage is a command used wrongly; the message says how.
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}
