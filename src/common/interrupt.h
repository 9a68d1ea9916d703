/*
 * interrupt.h — polling the interrupt handler (see interrupt.c).
 */
#ifndef VDX_INTERRUPT_H
#define VDX_INTERRUPT_H

#include "common.h"

/* 1 when the handler asks to stop (polled at most every 50 ms per thread;
 * call from the thread that made the public call). */
VDX_INTERNAL int vdx_interrupted(void);

/* Inside a parallel region: the team's master (the calling thread) polls
 * and sets *stop; every thread then sees it.  Returns *stop. */
VDX_INTERNAL int vdx_poll_stop(int *stop);

#endif
