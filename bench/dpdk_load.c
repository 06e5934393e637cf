/* bench/dpdk_load.c — ringkv-bench's DPDK kernel-bypass mode (placeholder while the driver is
 * written in dpdk_load.c.wip): refuses dpdk: targets with a clear message. Never touches the
 * EAL. */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

int bench_dpdk_run(struct bench_cfg *cfg, struct bench_run *run)
{
	(void)cfg;
	(void)run;
	fprintf(stderr, "ringkv-bench: dpdk: targets are not built into this binary yet\n");
	return 2;
}

void bench_dpdk_release(struct bench_run *run)
{
	free(run->stats);
	run->stats = NULL;
}
