// Package webui is the License Usage page: plain HTML, CSS and JavaScript
// embedded in the binary and served at / (docs/page.md). The page talks
// only to the node's own REST API and event stream; it loads nothing from
// other hosts, and the Content-Security-Policy sent with it says so to the
// browser too.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

//go:embed static
var static embed.FS

// Assets returns the embedded files: index.html and assets/*.
func Assets() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	return sub
}

// csp allows only the node's own scripts, styles, API and event stream.
// No inline script or style: data is never turned into markup.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Register serves the page at / and its files at /assets/*.
func Register(r *gin.Engine) {
	files := Assets()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err)
	}
	assets := http.FileServer(http.FS(files))
	page := func(c *gin.Context) {
		headers(c)
		// The page is small; always revalidate so an upgrade shows at once.
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", index)
	}
	asset := func(c *gin.Context) {
		if strings.HasSuffix(c.Param("file"), "/") {
			c.Status(http.StatusNotFound) // no folder listings
			return
		}
		headers(c)
		c.Header("Cache-Control", "no-cache")
		assets.ServeHTTP(c.Writer, c.Request)
	}
	// HEAD as GET, for monitors and proxies that check the page is there
	// (net/http sends no body with a HEAD answer)
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Handle(m, "/", page)
		r.Handle(m, "/assets/*file", asset)
	}
}

func headers(c *gin.Context) {
	c.Header("Content-Security-Policy", csp)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("X-Frame-Options", "DENY")
}
