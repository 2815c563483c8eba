//go:build !race

package app_test

// raceEnabled: the tests run with the race detector.
const raceEnabled = false
