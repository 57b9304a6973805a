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
	assert.Contains(t, body, `<script src="/assets/app.js" defer></script>`)
}

func TestAssetsAreServedWithTheirTypes(t *testing.T) {
	t.Parallel()
	srv := pageServer(t)
	for path, typ := range map[string]string{"/assets/app.js": "text/javascript", "/assets/app.css": "text/css"} {
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
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:`)
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

// The script never turns text into markup: no innerHTML and friends.
func TestScriptNeverParsesDataAsHTML(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(webui.Assets(), "assets/app.js")
	require.NoError(t, err)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "DOMParser"} {
		assert.False(t, strings.Contains(string(b), sink), "app.js uses %s", sink)
	}
}
