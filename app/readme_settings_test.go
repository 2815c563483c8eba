package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/platform/config"
)

// The README's settings table is what operators read: every setting of
// `modshop serve` is in it once, under its own variable and with its
// default, and it names no setting serve does not have.
func TestReadmeSettings_MatchTheServeFlags(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table, err := readmeSettings(string(readme))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	for _, problem := range compareSettings(serveSettings(t), table) {
		t.Errorf("README.md settings table: %s", problem)
	}
}

// The comparison finds each kind of disagreement, so the test above can
// fail.
func TestReadmeSettings_ComparisonFindsEachDisagreement(t *testing.T) {
	t.Parallel()
	flags := []config.Setting{
		{Flag: "http-addr", Env: "MODSHOP_HTTP_ADDR", Default: ":8080"},
		{Flag: "database-url", Env: "MODSHOP_DATABASE_URL", Default: ""},
		{Flag: "session-ttl", Env: "MODSHOP_SESSION_TTL", Default: (24 * time.Hour).String()},
	}
	const header = "# modshop\n\n## Configuration\n\n| flag | environment | default | what |\n|---|---|---|---|\n"
	const good = header +
		"| `--http-addr` | `MODSHOP_HTTP_ADDR` | `:8080` | listen address |\n" +
		"| `--database-url` | `MODSHOP_DATABASE_URL` | (empty) | PostgreSQL URL |\n" +
		"| `--session-ttl` | `MODSHOP_SESSION_TTL` | `24h` (a day) | how long a log-in lasts |\n"
	tests := []struct {
		name, readme, want string // want: a word of the one problem; "" for none
	}{
		{"agrees", good, ""},
		{"wrong default", strings.Replace(good, "`:8080`", "`:9090`", 1), `default ":9090"`},
		{"wrong duration", strings.Replace(good, "`24h`", "`12h`", 1), `default "12h"`},
		{"empty where the flag has a value", strings.Replace(good, "`:8080`", "(empty)", 1), `default ""`},
		{"wrong variable", strings.Replace(good, "`MODSHOP_HTTP_ADDR`", "`MODSHOP_ADDR`", 1), "MODSHOP_ADDR"},
		{"missing flag", strings.Replace(good, "| `--database-url` | `MODSHOP_DATABASE_URL` | (empty) | PostgreSQL URL |\n", "", 1), "--database-url is missing"},
		{"flag that does not exist", good + "| `--no-such` | `MODSHOP_NO_SUCH` | `1` | nothing |\n", "--no-such is no setting"},
		{"row twice", good + "| `--http-addr` | `MODSHOP_HTTP_ADDR` | `:8080` | again |\n", "--http-addr is listed 2 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			table, err := readmeSettings(tt.readme)
			if err != nil {
				t.Fatal(err)
			}
			problems := compareSettings(flags, table)
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Fatalf("problems %q, want none", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.want)):
				t.Fatalf("problems %q, want one that says %q", problems, tt.want)
			}
		})
	}
	if _, err := readmeSettings("# modshop\n\nno table here\n"); err == nil {
		t.Error("a README without the settings table was read without error")
	}
}

// serveSettings returns the settings `modshop serve` defines, as its --help
// prints them from its flag set (flag, variable, default; "" for empty).
func serveSettings(t *testing.T) []config.Setting {
	t.Helper()
	var out bytes.Buffer
	err := app.Run(context.Background(), app.Env{Args: []string{"serve", "--help"}, Stdout: &out, Stderr: &out,
		Lookup: func(string) (string, bool) { return "", false }})
	if !app.IsHelp(err) {
		t.Fatalf("modshop serve --help: %v\n%s", err, out.String())
	}
	_, list, ok := strings.Cut(out.String(), "Settings (flag, environment variable, default):\n")
	if !ok {
		t.Fatalf("modshop serve --help lists no settings:\n%s", out.String())
	}
	var settings []config.Setting
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "  --") {
			continue // a setting's usage, on the line below it
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("modshop serve --help: setting line %q has no variable or default", line)
		}
		def := strings.Join(f[2:], " ")
		if def == `""` {
			def = ""
		}
		settings = append(settings, config.Setting{Flag: strings.TrimPrefix(f[0], "--"), Env: f[1], Default: def})
	}
	if len(settings) == 0 {
		t.Fatalf("modshop serve --help lists no settings:\n%s", out.String())
	}
	return settings
}

// readmeSettings reads the settings table of the README's Configuration
// section: rows "| `--flag` | `MODSHOP_…` | default | what |", where the
// default is a code span (anything after it is a remark) or "(empty)".
func readmeSettings(readme string) ([]config.Setting, error) {
	_, section, ok := strings.Cut(readme, "\n## Configuration\n")
	if !ok {
		return nil, fmt.Errorf("no \"## Configuration\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var rows []config.Setting
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`--") {
			continue
		}
		rows = append(rows, config.Setting{
			Flag:    strings.TrimPrefix(strings.Trim(strings.TrimSpace(cells[1]), "`"), "--"),
			Env:     strings.Trim(strings.TrimSpace(cells[2]), "`"),
			Default: readmeDefault(strings.TrimSpace(cells[3])),
		})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the Configuration section has no settings table")
	}
	return rows, nil
}

// readmeDefault reads a default cell: "(empty)", or the first code span
// ("`168h` (7 days)" is 168h).
func readmeDefault(cell string) string {
	if cell == "(empty)" {
		return ""
	}
	if rest, ok := strings.CutPrefix(cell, "`"); ok {
		if code, _, ok := strings.Cut(rest, "`"); ok {
			return code
		}
	}
	return cell
}

// compareSettings says where the README's table disagrees with the flags:
// each flag once, with its variable and default; no other flag.
func compareSettings(flags, table []config.Setting) []string {
	var problems []string
	rows := map[string][]config.Setting{}
	for _, r := range table {
		rows[r.Flag] = append(rows[r.Flag], r)
	}
	known := map[string]bool{}
	for _, f := range flags {
		known[f.Flag] = true
		switch rs := rows[f.Flag]; {
		case len(rs) == 0:
			problems = append(problems, fmt.Sprintf("--%s is missing (%s, default %q)", f.Flag, f.Env, f.Default))
		case len(rs) > 1:
			problems = append(problems, fmt.Sprintf("--%s is listed %d times", f.Flag, len(rs)))
		case rs[0].Env != f.Env:
			problems = append(problems, fmt.Sprintf("--%s: variable %s, the flag's is %s", f.Flag, rs[0].Env, f.Env))
		case !sameDefault(rs[0].Default, f.Default):
			problems = append(problems, fmt.Sprintf("--%s: default %q, the flag's is %q", f.Flag, rs[0].Default, f.Default))
		}
	}
	for _, r := range table {
		if !known[r.Flag] {
			problems = append(problems, fmt.Sprintf("--%s is no setting of modshop serve", r.Flag))
		}
	}
	return problems
}

// sameDefault compares defaults as written: durations by value ("24h" is
// the flag's "24h0m0s"), everything else exactly.
func sameDefault(readme, flag string) bool {
	if readme == flag {
		return true
	}
	a, errA := time.ParseDuration(readme)
	b, errB := time.ParseDuration(flag)
	return errA == nil && errB == nil && a == b
}
