// Package migrations embeds every module's SQL migrations in the binary,
// one folder per module, named after it: migrations/<module>/NNNN_name.sql
// (goose format). They live here rather than in the module's folder
// because go:embed cannot reach up out of a package's folder. Only the
// composition root (app.Modules) joins a module with its folder here, and
// tests; app/walls_modules_test.go holds both rules, and that every
// folder belongs to a module and every module has one.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed */*.sql
var files embed.FS

// For returns the migrations of one module, rooted at its folder.
func For(module string) (fs.FS, error) {
	return fs.Sub(files, module)
}
