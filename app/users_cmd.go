package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/config"
)

// runUsers handles `modshop users create`. The password comes from
// standard input when it is piped in; otherwise one is generated and
// printed once. There is no default password anywhere.
func runUsers(ctx context.Context, env Env, args []string) error {
	switch {
	case len(args) == 0:
		return errors.New("users: say what to do: modshop users create --username NAME --email ADDRESS [--admin] (see modshop users --help)")
	case isHelpFlag(args[0]) || args[0] == "help":
		// create is the one users command: its help is the users help.
		args = []string{"create", "--help"}
	case args[0] != "create":
		return fmt.Errorf("users: unknown command %q: the one users command is create (see modshop users --help)", args[0])
	}
	var username, email string
	var admin bool
	cfg, err := parseConfig(env, "users create", args[1:], func(s *config.Set) {
		s.FS.StringVar(&username, "username", "", "the new account's username")
		s.FS.StringVar(&email, "email", "", "the new account's e-mail address")
		s.FS.BoolVar(&admin, "admin", false, "give the account the admin role")
	})
	if err != nil {
		return err
	}
	if username == "" || email == "" {
		return errors.New("users create: --username and --email are required")
	}
	// Accounts are the user module's alone: open nothing else, whatever
	// this process's MODSHOP_MODULES says.
	cfg.Modules = user.Name
	password, generated, err := readPassword(env.Stdin)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, env.Stderr)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, Modules(cfg), log)
	if err != nil {
		return err
	}
	defer st.close(context.WithoutCancel(ctx))
	u, err := st.userModule().CreateUser(ctx, username, email, password, admin)
	if err != nil {
		return fmt.Errorf("users create: %w", err)
	}
	fmt.Fprintf(env.Stdout, "created user %s (%s) with roles %s\n", u.Username, u.ID, strings.Join(u.Roles, ", "))
	if generated {
		fmt.Fprintf(env.Stdout, "password (shown once, keep it safe): %s\n", password)
	}
	return nil
}

// readPassword reads one line from a piped stdin, or generates a password
// when stdin is a terminal or empty.
func readPassword(stdin io.Reader) (password string, generated bool, err error) {
	if stdin != nil && !isTerminal(stdin) {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, fmt.Errorf("read password from stdin: %w", err)
		}
		if p := strings.TrimRight(line, "\r\n"); p != "" {
			return p, false, nil
		}
	}
	return generatePassword(), true, nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// generatePassword returns 26 random base32 characters (130 bits).
func generatePassword() string { return rand.Text() }
