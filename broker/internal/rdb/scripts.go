package rdb

import (
	"embed"
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

// accountOps are the account operations, one file each; each defines
// OPS['<name>'] in the account script.
var accountOps = []string{
	"open", "join", "renew", "pause", "resume", "end", "block", "settings",
	"account_create", "user_put", "topup", "reap",
}

// buildAccountScript puts lib.lua, every operation and main.lua (the batch
// runner) into the one account script.
func buildAccountScript() *redis.Script {
	parts := []string{mustLua("lib.lua")}
	for _, op := range accountOps {
		parts = append(parts, mustLua(op+".lua"))
	}
	parts = append(parts, mustLua("main.lua"))
	return redis.NewScript(strings.Join(parts, "\n"))
}

// The scripts, loaded once and run by SHA: every state change of an
// account goes through scriptAccount (a batch of one or more operations).
var (
	scriptAccount = buildAccountScript()
	scriptDueSet  = redis.NewScript(mustLua("due_set.lua"))
	scriptRate    = redis.NewScript(mustLua("rate.lua"))
)

// allScripts lists every script, for loading and for the test that loads
// each one.
var allScripts = []*redis.Script{scriptAccount, scriptDueSet, scriptRate}

// The account operations, by name (the OPS key in Lua).
const (
	opOpen          = "open"
	opJoin          = "join"
	opRenew         = "renew"
	opPause         = "pause"
	opResume        = "resume"
	opEnd           = "end"
	opBlock         = "block"
	opSettings      = "settings"
	opAccountCreate = "account_create"
	opUserPut       = "user_put"
	opTopUp         = "topup"
	opReap          = "reap"
)
