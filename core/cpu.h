/* core/cpu.h — CPU hints shared by the spinning loops (table readers, the shared-memory
 * client, the paced client clock). */
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

#endif
