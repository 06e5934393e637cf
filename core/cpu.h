/* core/cpu.h — CPU hints shared by the spinning loops (table readers, the shared-memory
 * client, the paced client clock) and by the append paths that prefetch for writing. */
#ifndef RKV_CPU_H
#define RKV_CPU_H

/* One iteration of a spin-wait: tell the core (and an SMT sibling) that we are waiting. */
static inline void rkv_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Fetch p's line for writing (exclusive), ahead of stores to a line not touched for a while.
 * PREFETCHW is a NOP on x86 CPUs without it. */
static inline void rkv_prefetchw(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1);
#endif
}

#endif
