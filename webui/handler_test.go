package webui_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/webui"
)

func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	webui.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

func TestPageIsServedAtRootWithAStrictContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	srv := pageServer(t)
	res, body := get(t, srv.URL+"/")
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
	csp := res.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, "script-src 'self'")
	assert.NotContains(t, csp, "unsafe-inline")
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Contains(t, body, `<script type="module" src="/assets/app.js"></script>`)
}

// scripts lists the page's JavaScript files (assets/*.js).
func scripts(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(webui.Assets(), "assets/*.js")
	require.NoError(t, err)
	require.Contains(t, names, "assets/app.js")
	return names
}

func TestAssetsAreServedWithTheirTypes(t *testing.T) {
	t.Parallel()
	srv := pageServer(t)
	types := map[string]string{"/assets/app.css": "text/css"}
	for _, name := range scripts(t) {
		types["/"+name] = "text/javascript"
	}
	for path, typ := range types {
		res, body := get(t, srv.URL+path)
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Contains(t, res.Header.Get("Content-Type"), typ, path)
		assert.NotEmpty(t, body, path)
	}
	res, _ := get(t, srv.URL+"/assets/")
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "no folder listing")
	res, _ = get(t, srv.URL+"/assets/missing.js")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

// Every asset is embedded: nothing names another host.
func TestAssetsLoadNothingFromOtherHosts(t *testing.T) {
	t.Parallel()
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:|` +
		`(from|import)\s*\(?\s*["'](https?:)?//|EventSource\(\s*["']https?:`)
	err := fs.WalkDir(webui.Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(webui.Assets(), path)
		require.NoError(t, err)
		assert.Empty(t, external.FindAllString(string(b), -1), path)
		return nil
	})
	require.NoError(t, err)
}

// No script ever turns text into markup: no innerHTML and friends.
func TestScriptsNeverParseDataAsHTML(t *testing.T) {
	t.Parallel()
	for _, name := range scripts(t) {
		b, err := fs.ReadFile(webui.Assets(), name)
		require.NoError(t, err)
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"} {
			assert.False(t, strings.Contains(string(b), sink), "%s uses %s", name, sink)
		}
	}
}

// The page loads app.js as a module; it imports the others by relative
// name. Every script is reached that way and every import names an
// embedded script, so none is left out of the page (or of the checks above).
func TestEveryScriptIsAModuleOfThePage(t *testing.T) {
	t.Parallel()
	importRe := regexp.MustCompile(`(?m)^import\s[^;]*?\sfrom\s+'([^']*)';`)
	reached := map[string]bool{}
	queue := []string{"assets/app.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if reached[name] {
			continue
		}
		reached[name] = true
		b, err := fs.ReadFile(webui.Assets(), name)
		require.NoError(t, err, "imported by the page")
		for _, m := range importRe.FindAllStringSubmatch(string(b), -1) {
			require.Regexp(t, `^\./[a-z]+\.js$`, m[1], "%s imports by relative name", name)
			queue = append(queue, "assets/"+strings.TrimPrefix(m[1], "./"))
		}
	}
	for _, name := range scripts(t) {
		assert.True(t, reached[name], "%s is imported by the page", name)
	}
	index, err := fs.ReadFile(webui.Assets(), "index.html")
	require.NoError(t, err)
	for _, m := range regexp.MustCompile(`<link rel="modulepreload" href="/(assets/[a-z]+\.js)">`).FindAllStringSubmatch(string(index), -1) {
		assert.True(t, reached[m[1]], "preloaded %s is imported by the page", m[1])
	}
}

// TestHeadAnswersAsGetWithoutABody: monitors and proxies check the page
// with HEAD; it answers as GET does, headers included, with no body.
func TestHeadAnswersAsGetWithoutABody(t *testing.T) {
	t.Parallel()
	srv := pageServer(t)
	for _, path := range []string{"/", "/assets/app.js"} {
		res, err := http.Head(srv.URL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'", path)
		assert.Empty(t, body, path)
	}
}
