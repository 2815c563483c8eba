//go:build race

package apptest

// raceEnabled says the tests run with the race detector.
const raceEnabled = true
