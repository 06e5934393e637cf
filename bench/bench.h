/* bench/bench.h — the modes of ringkv-bench and how bench/main.c reaches them.
 *
 * ringkv-bench is one binary with two families of modes: `engine` (bench/engine.c), a
 * single-core microbenchmark of core/table against DPDK's rte_hash, and the load generators
 * (bench/load.c: `--target shm:|udp:|dpdk:`) that drive a running node. main.c only
 * dispatches; each mode parses its own flags. Contract for every mode's main: argv[0] is the
 * mode's name (or the program's), it returns the process exit status (0 ok, 1 a run that
 * failed or found errors, 2 bad usage), prints results on stdout and progress on stderr, and
 * `--help` prints its usage on stdout and returns 0. Nothing here allocates or keeps state. */
#ifndef RKV_BENCH_H
#define RKV_BENCH_H

#include <stdio.h>

/* `ringkv-bench engine [flags]`: argv[0] is "engine". */
int bench_engine_main(int argc, char **argv);
void bench_engine_usage(FILE *out);

/* `ringkv-bench engine-shm [flags]` (bench/engine_shm.c): one-sided shm GETs vs the
 * engine's GET burst on the same keys. argv[0] is "engine-shm". */
int bench_engine_shm_main(int argc, char **argv);

/* Every other invocation (bench/load.c): argc/argv are the program's own, unchanged. */
int bench_load_main(int argc, char **argv);

#endif
