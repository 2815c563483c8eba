// Package bench measures modshop under load and relates the figures to
// pgbench run against the same PostgreSQL server in the same run, so that
// numbers taken on different (and noisy) machines can be compared.
//
// Run it with
//
//	go test -run '^$' -bench BenchmarkUsers -benchtime 1x ./app/bench/
//
// It uses TEST_DATABASE_URL (or the tests' shared embedded server) exactly
// as the other test packages do. MODSHOP_BENCH_PHASE (a Go duration, 15s by
// default) sets the length of each max-throughput phase; the open-loop
// phases last two thirds of it.
//
// With MODSHOP_BENCH_RESULTS set (make bench sets it), each benchmark also
// appends the figures of issue 17's targets to that file
// (benchkit.Record), and make bench ends with tools/benchtable's table of
// them.
//
// The benchmarks are its test files; the measuring kit they use (pgbench,
// the open- and closed-loop load drivers, CPU sampling, percentiles) is
// platform/benchkit, shared with the bus's benchmarks.
package bench
