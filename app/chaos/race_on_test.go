//go:build race

package chaos

// raceEnabled: the suite runs with the race detector, and so does the shop
// it builds.
const raceEnabled = true
