package rdb

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

func mustLua(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("rdb: missing embedded script " + name)
	}
	return string(b)
}

// accountOps are the account operations, one file each (<name>.lua defines
// OPS['<name>'] in the account script), with the number of arguments each
// takes: a batch gives an operation's name and then exactly that many
// (main.lua's ARITY is made from this list, and batcher.run checks it).
var accountOps = []struct {
	name  string
	arity int
}{
	{opOpen, 5}, {opJoin, 2}, {opRenew, 2}, {opPause, 3}, {opResume, 2}, {opClose, 5}, {opEnd, 4},
	{opBlock, 3}, {opSettings, 1}, {opAccountCreate, 3}, {opUserPut, 3}, {opTopUp, 4}, {opReap, 1},
}

// opArity is accountOps by name.
var opArity = func() map[string]int {
	m := make(map[string]int, len(accountOps))
	for _, o := range accountOps {
		m[o.name] = o.arity
	}
	return m
}()

// accountCode is lib.lua, rules.lua, timers.lua, every operation and
// main.lua (the batch runner): the account code, which defines reset and
// main.
func accountCode() string {
	parts := []string{mustLua("lib.lua"), mustLua("rules.lua"), mustLua("timers.lua")}
	arity := make([]string, len(accountOps))
	for i, op := range accountOps {
		parts = append(parts, mustLua(op.name+".lua"))
		arity[i] = fmt.Sprintf("['%s'] = %d", op.name, op.arity)
	}
	parts = append(parts, "-- ARITY: how many arguments each operation takes (scripts.go, accountOps)\n"+
		"local ARITY = {"+strings.Join(arity, ", ")+"}\n", mustLua("main.lua"))
	return strings.Join(parts, "\n")
}

// gcPause is the first lines of the function's body: on the first call
// after a load it sets the garbage collector's pause of Redis's functions
// VM to 1000 % (Lua's default: 200 %; a library's code cannot call
// collectgarbage while it loads). Redis itself starts a collection step
// every 50 calls of any script or function, so the pause only decides how
// much Lua collects between those: with 1000 the VM held 0.8-2.6 MB in
// make bench against 0.8-1.7 MB, and Redis spent ~2-3 % less CPU per
// cycle (serial probe 13.45 -> 13.0 µs; make bench, own seats, medians of
// 4 pairs 15.6 -> 15.3 µs). The VM is shared by every library loaded into
// that Redis, so they get the same pause.
const gcPause = "  if not GC_SET then GC_SET = true; collectgarbage('setpause', 1000) end\n"

// The account code runs two ways. As a Redis function (FUNCTION LOAD once,
// then FCALL): its functions are made once per library load, not once per
// call. As a script (EVALSHA), where it is built on every call: for Redis
// before 7 and for miniredis (demo mode). The library's name carries a
// hash of the code, so nodes of two versions never run each other's.
var (
	accountSource   = accountCode() // joined once, used three ways
	accountFunction = "seatbroker_account_" + codeHash(accountSource)
	accountLibrary  = "#!lua name=" + accountFunction + "\nlocal GC_SET\n" + accountSource +
		"\nredis.register_function('" + accountFunction + "', function(keys, args)\n" + gcPause +
		"  reset(keys, args)\n  return main(args)\nend)\n"
	scriptAccount  = redis.NewScript(accountSource + "\nreset(KEYS, ARGV)\nreturn main(ARGV)\n")
	scriptDueSet   = redis.NewScript(mustLua("due_set.lua"))
	scriptRate     = redis.NewScript(mustLua("rate.lua"))
	scriptTokenPut = redis.NewScript(mustLua("token_put.lua"))
)

func codeHash(code string) string {
	sum := sha1.Sum([]byte(code))
	return hex.EncodeToString(sum[:8])
}

// allScripts lists every script, for loading and for the test that loads
// each one.
var allScripts = []*redis.Script{scriptAccount, scriptDueSet, scriptRate, scriptTokenPut}

// The account operations, by name (the OPS key in Lua).
const (
	opOpen          = "open"
	opJoin          = "join"
	opRenew         = "renew"
	opPause         = "pause"
	opResume        = "resume"
	opClose         = "close"
	opEnd           = "end"
	opBlock         = "block"
	opSettings      = "settings"
	opAccountCreate = "account_create"
	opUserPut       = "user_put"
	opTopUp         = "topup"
	opReap          = "reap"
)
