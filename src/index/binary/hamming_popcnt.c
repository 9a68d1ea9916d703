/* hamming_popcnt.c — the Hamming kernel built with -mpopcnt (see hamming.h). */
#include <string.h>

#include "hamming.h"

#define HAMMING_NY_NAME vdx_hamming_ny_popcnt
#include "hamming_ny.inc"
