// Command modshop runs the shop: one binary, every module.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/platform/pgembed"
)

func main() {
	pgembed.RunChildIfRequested()
	err := app.Run(context.Background(), app.Env{Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil && !app.IsHelp(err) {
		fmt.Fprintln(os.Stderr, "modshop:", err)
		os.Exit(1)
	}
}
