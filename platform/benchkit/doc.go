// Package benchkit is the measuring kit of modshop's benchmarks (app/bench,
// platform/bus and whatever measures the shop next): pgbench runs, an
// open-loop and a closed-loop load driver, CPU use of this process, of the
// machine and of the processes on it, percentiles of latencies, and the
// formatting their reports share.
//
// Figures taken on a shared, noisy machine mean little on their own, so a
// benchmark relates them to pgbench run against the same PostgreSQL server
// in the same run and compares ratios: requests/s ÷ pgbench tps, CPU per
// operation in pgbench transactions. Two runs are compared by those ratios,
// never by their absolute rates.
//
// The open-loop driver measures each latency from the operation's intended
// start, so a slow system cannot hide its queueing delay behind a slow
// generator (no coordinated omission).
//
// It is test support: importable by any package's tests, it imports no
// module and nothing of app.
package benchkit
