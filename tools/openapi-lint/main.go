// Command openapi-lint writes the whole shop's OpenAPI document (as served
// at /api/openapi.json) to the file named by its argument, for `make
// openapi-lint` to run the pinned linter of this folder on it.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/modshop/modshop/app"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./tools/openapi-lint FILE")
		os.Exit(2)
	}
	doc, err := app.OpenAPIDocument()
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi-lint:", err)
		os.Exit(1)
	}
	// Indented, so that the linter's line numbers point somewhere readable.
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-lint:", err)
		os.Exit(1)
	}
	// #nosec G306 G703 -- a build tool writing the file its caller names: a readable document, nothing secret
	if err := os.WriteFile(os.Args[1], out.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-lint:", err)
		os.Exit(1)
	}
}
