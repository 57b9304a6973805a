package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/seatbroker/seatbroker/client"
)

// wsFlags are the websocket commands' connection settings: flags, each
// with a SEATBROKER_* environment variable (the flag wins).
type wsFlags struct {
	server     string
	account    string
	user       string
	password   string
	token      string
	deviceID   string
	deviceName string
}

func wsEnv(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (f *wsFlags) bind(fs *flag.FlagSet, desktop bool) {
	fs.StringVar(&f.server, "server", wsEnv("SEATBROKER_SERVER", "http://127.0.0.1:8080"), "the node's address, or several separated by commas: the first, then the others to fall back on when a node is down (env SEATBROKER_SERVER)")
	if !desktop {
		fs.StringVar(&f.user, "name", wsEnv("SEATBROKER_REMOTE_NAME", "remote"), "your name, shown as who closed the session (env SEATBROKER_REMOTE_NAME)")
		return
	}
	host, _ := os.Hostname()
	fs.StringVar(&f.account, "account", wsEnv("SEATBROKER_ACCOUNT", ""), "account id (env SEATBROKER_ACCOUNT)")
	fs.StringVar(&f.user, "user", wsEnv("SEATBROKER_USER", ""), "user name (env SEATBROKER_USER)")
	fs.StringVar(&f.password, "password", "", "password (env SEATBROKER_PASSWORD)")
	fs.StringVar(&f.token, "token", "", "a client token instead of the password (env SEATBROKER_TOKEN)")
	fs.StringVar(&f.deviceID, "device", wsEnv("SEATBROKER_DEVICE", "seatctl-"+host), "this device's id (env SEATBROKER_DEVICE)")
	fs.StringVar(&f.deviceName, "device-name", host, "this device's name")
}

// secrets reads -password and -token from SEATBROKER_PASSWORD and
// SEATBROKER_TOKEN when they were not given; call it after parsing a
// desktop command's flags.
func (f *wsFlags) secrets(fs *flag.FlagSet) {
	secretFromEnv(fs, "password", "SEATBROKER_PASSWORD", &f.password)
	secretFromEnv(fs, "token", "SEATBROKER_TOKEN", &f.token)
}

// addrs splits -server into the address to dial and the others to fall
// back on (client.Options.Addresses).
func (f *wsFlags) addrs() (first string, others []string) {
	for _, a := range strings.Split(f.server, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if first == "" {
			first = a
		} else {
			others = append(others, a)
		}
	}
	return first, others
}

func (f *wsFlags) options(role string) (client.Options, error) {
	_, others := f.addrs()
	o := client.Options{Role: role, Addresses: others}
	if role == client.RoleRemote {
		o.Name = f.user
		return o, nil
	}
	if f.token == "" && (f.account == "" || f.user == "" || f.password == "") {
		return o, errors.New("sign in with -token, or -account, -user and -password (or SEATBROKER_* env)")
	}
	o.Token, o.Account, o.Name, o.Password = f.token, f.account, f.user, f.password
	o.DeviceID, o.DeviceName = f.deviceID, f.deviceName
	return o, nil
}

// pageURL makes the page's address absolute on the node's address.
func (f *wsFlags) pageURL(u string) string {
	if strings.HasPrefix(u, "/") {
		first, _ := f.addrs()
		return strings.TrimSuffix(first, "/") + u
	}
	return u
}

// explain prints a refusal, with the page and the user's own sessions for
// a denial.
func (f *wsFlags) explain(w io.Writer, err error) {
	var ce *client.Error
	if !errors.As(err, &ce) {
		fmt.Fprintln(w, "error:", err)
		return
	}
	d := ce.Detail
	fmt.Fprintf(w, "refused (%s): %s\n", d.Code, d.Message)
	if d.PageURL != "" {
		fmt.Fprintln(w, "License Usage page:", f.pageURL(d.PageURL))
	}
	if len(d.Own) > 0 {
		fmt.Fprintln(w, "your sessions you may end to make room:")
		for _, s := range d.Own {
			fmt.Fprintf(w, "  %s  %-11s device %s\n", s.ID, s.State, s.DeviceID)
		}
	}
}

// watch prints events until the session sid ends (nil), the client stops,
// or ctx is done. While the session is being ended it shows a countdown
// that rewrites its own line.
func watch(ctx context.Context, w io.Writer, f *wsFlags, c *client.Client, sid string) error {
	var notice *client.Notice
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	countdown := func() {
		if notice != nil {
			fmt.Fprintf(w, "\rending in %2ds (%s, by %s) ", int((notice.Remaining()+999*time.Millisecond)/time.Second), notice.Reason, notice.EndedBy)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			countdown()
		case e, ok := <-c.Events():
			if !ok {
				return errors.New("disconnected")
			}
			if notice != nil {
				fmt.Fprintln(w)
			}
			switch e := e.(type) {
			case client.Granted:
				fmt.Fprintf(w, "granted: session %s, %s, %s seat\n", e.Session.ID, e.Session.State, e.Session.Kind)
			case client.Denied:
				f.explain(w, &client.Error{Detail: e.Error, Denied: true})
			case client.SessionChanged:
				fmt.Fprintf(w, "session %s: %s\n", e.Session.ID, e.Session.State)
			case client.Notice:
				notice = &e
				fmt.Fprintf(w, "NOTICE: %s is ending this session (%s)\n", e.EndedBy, e.Reason)
				countdown()
				continue
			case client.Ended:
				fmt.Fprintf(w, "session %s ended: %s\n", e.SessionID, e.Reason)
				if e.SessionID == sid {
					return nil
				}
			case client.Lost:
				fmt.Fprintf(w, "session %s lost: %s\n", e.SessionID, e.Error.Message)
				if e.SessionID == sid {
					return errors.New("session lost")
				}
			case client.Warning:
				fmt.Fprintf(w, "warning (%s): %s, balance %d minutes\n", e.Code, e.Message, e.Balance)
			case client.ServerError:
				fmt.Fprintf(w, "server error (%s): %s\n", e.Error.Code, e.Error.Message)
			case client.Disconnected:
				fmt.Fprintln(w, "connection lost; reconnecting...")
			case client.Stopped:
				return fmt.Errorf("stopped: %w", e.Err)
			case client.Reconnected:
				fmt.Fprintf(w, "reconnected with %d session(s)\n", len(e.Sessions))
			}
			if notice != nil {
				countdown()
			}
		}
	}
}

// closeQuietly ends the session on the way out (Ctrl-C), best effort.
func closeQuietly(c *client.Client, sid string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := c.CloseSession(ctx, sid); err == nil {
		fmt.Println("\nsession closed")
	}
}
