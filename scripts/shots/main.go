// Command shots saves screenshots of the License Usage page's main views
// from a running node, in headless Chromium: sign-in, License, License
// Usage (desktop and phone width), Settings/Security and Users.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the node's address")
	out := flag.String("out", "screenshots", "folder for the PNGs")
	account := flag.String("account", "demo", "account to sign in to")
	user := flag.String("user", "admin", "user to sign in as")
	password := flag.String("password", "demo-password", "the user's password")
	chrome := flag.String("chromium", "/usr/bin/chromium", "the browser")
	flag.Parse()
	if err := run(*url, *out, *account, *user, *password, *chrome); err != nil {
		fmt.Fprintln(os.Stderr, "shots:", err)
		os.Exit(1)
	}
}

func run(url, out, account, user, password, chrome string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "shots-chromium")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(dir), chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()

	shot := func(name string) error {
		time.Sleep(400 * time.Millisecond) // let the live values and the countdown settle into the frame
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			return err
		}
		path := filepath.Join(out, name+".png")
		fmt.Println(path)
		return os.WriteFile(path, png, 0o644)
	}
	wait := func(expr string) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second)))
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", expr, err)
		}
		return nil
	}
	view := func(hash, ready string) error {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf("location.hash = %q", hash))); err != nil {
			return err
		}
		return wait(ready)
	}

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url+"/#usage"),
		chromedp.WaitVisible(chromedp.ID("signin-account"))); err != nil {
		return err
	}
	if err := shot("1-signin"); err != nil {
		return err
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("signin-account"), account),
		chromedp.SendKeys(chromedp.ID("signin-name"), user),
		chromedp.SendKeys(chromedp.ID("signin-password"), password+"\r")); err != nil {
		return err
	}
	steps := []struct{ hash, ready, name string }{
		{"#usage", `document.querySelectorAll('#sessions-body tr').length > 0 && /terminating/.test(document.getElementById('sessions-body').textContent)`, "3-usage"},
		{"#license", `!document.getElementById('view-license').hidden && document.getElementById('ov-seats').textContent !== '-'`, "2-license"},
		{"#settings", `!document.getElementById('view-settings').hidden && document.querySelector('#account-perms input').checked`, "4-settings-security"},
		{"#users", `document.querySelectorAll('#users-body tr').length > 0`, "5-users"},
	}
	for _, s := range steps {
		if err := view(s.hash, s.ready); err != nil {
			return err
		}
		if err := shot(s.name); err != nil {
			return err
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		return err
	}
	if err := view("#usage", `!document.getElementById('view-usage').hidden`); err != nil {
		return err
	}
	return shot("6-usage-phone")
}
