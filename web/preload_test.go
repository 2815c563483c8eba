package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// index.html preloads the modules main.js imports (docs/adr/0036): a
// preload of a module that is not there would be a 404 on every page load
// and an error in every visitor's console.
func TestIndex_PreloadsOnlyModulesThatExist(t *testing.T) {
	b, err := fs.ReadFile(Static(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	preloads := regexp.MustCompile(`<link rel="modulepreload" href="/([^"]+)">`).FindAllStringSubmatch(string(b), -1)
	if len(preloads) == 0 {
		t.Fatal("index.html preloads no module; has the way it preloads them changed?")
	}
	for _, m := range preloads {
		if _, err := fs.Stat(Static(), m[1]); err != nil || !strings.HasSuffix(m[1], ".js") {
			t.Errorf("index.html preloads /%s, which is not a module the shop serves (%v)", m[1], err)
		}
	}
}
