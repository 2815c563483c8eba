// Package chaos holds the chaos suite (its tests): the shop's binary, built
// with the chaos build tag, under a steady order load on a PostgreSQL of the
// suite's own, while the database restarts or stops, the process is killed,
// handlers fail or panic at random and a consumer is slowed; after each
// fault every order must be final, the invariants hold, no message be a
// dead letter, every accepted order exist once and every confirmed order be
// paid once. See docs/adr/0014-chaos-suite.md and docs/operations.md.
package chaos
