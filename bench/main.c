/* bench/main.c — ringkv-bench's entry point: picks the mode and hands over argv.
 *
 * `ringkv-bench engine ...` runs the engine microbenchmark (bench/engine.c), `engine-shm`
 * one-sided shm GETs against it (bench/engine_shm.c); every other
 * invocation goes to the load generators (bench/load.c, `--target shm:|udp:|dpdk:`);
 * `ringkv-bench --help` prints the usage of both. Invariant: main.c parses nothing but the
 * first word, so each mode owns its flags. The weak bench_load_main below lets the binary
 * link without bench/load.c; the real one replaces it at link time. Never does benchmark work
 * itself. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

__attribute__((weak)) int bench_load_main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("  (load modes not built into this binary)\n");
			return 0;
		}
	}
	fprintf(stderr, "ringkv-bench: load modes not built\n");
	return 2;
}

static int usage(const char *prog)
{
	char help[] = "--help";
	char *load_argv[] = { (char *)prog, help, NULL };

	printf("usage: %s engine [engine flags]      single-core table vs rte_hash benchmark\n"
	       "       %s engine-shm --target shm:PATH  one-sided shm GETs vs the engine's\n"
	       "       %s --target T [load flags]   load generator against a node\n"
	       "       %s --help\n\n", prog, prog, prog, prog);
	printf("Engine mode (ringkv-bench engine):\n");
	bench_engine_usage(stdout);
	printf("\nLoad modes (ringkv-bench --target shm:|udp:|dpdk: ...):\n");
	fflush(stdout);
	bench_load_main(2, load_argv);
	return 0;
}

int main(int argc, char **argv)
{
	const char *prog = argc > 0 ? argv[0] : "ringkv-bench";

	if (argc > 1 && !strcmp(argv[1], "engine"))
		return bench_engine_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "engine-shm"))
		return bench_engine_shm_main(argc - 1, argv + 1);
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
			 !strcmp(argv[1], "help")))
		return usage(prog);
	return bench_load_main(argc, argv);
}
