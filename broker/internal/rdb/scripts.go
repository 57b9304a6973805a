package rdb

import (
	"embed"

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

// accountScript wraps an account script with lib.lua in front of it.
func accountScript(name string) *redis.Script {
	return redis.NewScript(mustLua("lib.lua") + "\n" + mustLua(name))
}

// The scripts, each one state change, loaded once and run by SHA.
var (
	scriptOpen          = accountScript("open.lua")
	scriptJoin          = accountScript("join.lua")
	scriptRenew         = accountScript("renew.lua")
	scriptPause         = accountScript("pause.lua")
	scriptResume        = accountScript("resume.lua")
	scriptEnd           = accountScript("end.lua")
	scriptBlock         = accountScript("block.lua")
	scriptSettings      = accountScript("settings.lua")
	scriptAccountCreate = accountScript("account_create.lua")
	scriptUserPut       = accountScript("user_put.lua")
	scriptTopUp         = accountScript("topup.lua")
	scriptReap          = accountScript("reap.lua")
	scriptDueSet        = redis.NewScript(mustLua("due_set.lua"))
	scriptRate          = redis.NewScript(mustLua("rate.lua"))
)

// allScripts lists every script, for loading and for the test that loads
// each one.
var allScripts = []*redis.Script{
	scriptOpen, scriptJoin, scriptRenew, scriptPause, scriptResume, scriptEnd,
	scriptBlock, scriptSettings, scriptAccountCreate, scriptUserPut, scriptTopUp,
	scriptReap, scriptDueSet, scriptRate,
}
