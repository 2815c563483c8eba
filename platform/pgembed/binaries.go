package pgembed

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

// binaries says which PostgreSQL programs run the cluster.
type binaries struct {
	dir       string // the library's BinariesPath: holds bin/pg_ctl
	major     string
	version   embeddedpostgres.PostgresVersion
	installed bool // false: the library downloads them into dir
}

// libraryVersions maps a major version to the library's version constant.
// The library re-runs initdb, wiping Dir/data, whenever PG_VERSION does not
// match the version it is given, so the two must always agree.
var libraryVersions = map[string]embeddedpostgres.PostgresVersion{
	"18":  embeddedpostgres.V18,
	"17":  embeddedpostgres.V17,
	"16":  embeddedpostgres.V16,
	"15":  embeddedpostgres.V15,
	"14":  embeddedpostgres.V14,
	"13":  embeddedpostgres.V13,
	"12":  embeddedpostgres.V12,
	"11":  embeddedpostgres.V11,
	"10":  embeddedpostgres.V10,
	"9.6": embeddedpostgres.V9,
}

// defaultInstallGlobs match installation directories that hold bin/pg_ctl and
// end in the major version: Debian/Ubuntu, RHEL/Fedora (PGDG), Homebrew.
var defaultInstallGlobs = []string{
	"/usr/lib/postgresql/*",
	"/usr/pgsql-*",
	"/opt/homebrew/opt/postgresql@*",
	"/usr/local/opt/postgresql@*",
}

const downloadMajor = "18" // the library's default version

func (c Config) searchGlobs() []string {
	if c.installGlobs != nil {
		return c.installGlobs
	}
	return defaultInstallGlobs
}

// findBinaries picks the binaries for the cluster: the installed version that
// created it, or for a new cluster the highest installed version; a download
// only when nothing usable is installed. It refuses a cluster whose version is
// not available rather than letting the library wipe it.
func findBinaries(cfg Config, dataMajor string) (binaries, error) {
	installed := installedVersions(cfg.searchGlobs())
	if dataMajor == "" {
		if len(installed) == 0 {
			return downloaded(cfg.Dir, downloadMajor), nil
		}
		majors := slices.SortedFunc(maps.Keys(installed), byMajor)
		highest := majors[len(majors)-1]
		return binaries{dir: installed[highest], major: highest, version: libraryVersions[highest], installed: true}, nil
	}
	if dir, ok := installed[dataMajor]; ok {
		return binaries{dir: dir, major: dataMajor, version: libraryVersions[dataMajor], installed: true}, nil
	}
	if _, known := libraryVersions[dataMajor]; known && len(installed) == 0 {
		return downloaded(cfg.Dir, dataMajor), nil
	}
	found := "none"
	if len(installed) > 0 {
		found = strings.Join(slices.SortedFunc(maps.Keys(installed), byMajor), ", ")
	}
	return binaries{}, fmt.Errorf("the cluster in %s was created by PostgreSQL %s, which is not installed (installed: %s): "+
		"install PostgreSQL %s, upgrade the cluster with pg_upgrade, or move %s away to start with an empty database",
		filepath.Join(cfg.Dir, "data"), dataMajor, found, dataMajor, cfg.Dir)
}

// downloaded describes binaries the library fetches. They go in a directory
// named after the version so that binaries of one version never run a
// cluster of another, and outside Dir/run, which the library empties.
func downloaded(dir, major string) binaries {
	v := libraryVersions[major]
	return binaries{dir: filepath.Join(dir, "pg-"+string(v)), major: major, version: v}
}

// installedVersions maps each installed major version the library supports
// to its directory.
func installedVersions(globs []string) map[string]string {
	found := map[string]string{}
	for _, g := range globs {
		matches, _ := filepath.Glob(g) // the patterns are constant and valid
		for _, m := range matches {
			major := strings.TrimLeft(filepath.Base(m), "abcdefghijklmnopqrstuvwxyz-@")
			if _, ok := libraryVersions[major]; !ok || found[major] != "" {
				continue
			}
			if fileExists(filepath.Join(m, "bin", "pg_ctl")) {
				found[major] = m
			}
		}
	}
	return found
}

func byMajor(a, b string) int {
	return majorNumber(a) - majorNumber(b)
}

func majorNumber(major string) int {
	n, _ := strconv.Atoi(strings.SplitN(major, ".", 2)[0])
	return n
}
