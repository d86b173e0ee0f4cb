/* The ZeRO paper's model of the training state per data-parallel rank
 * (Rajbhandari et al., SC20, section 5 and Table 1). */
#include "hyperspeed/memory.h"

double hs_zero_state_bytes(double psi, int n, int zero, const hs_zero_state *s)
{
    if (!s || n < 1 || zero < 0 || zero > 3)
        return -1;
    const double p = s->params * psi, g = s->grads * psi, k = s->optimizer * psi;
    return (zero >= 3 ? p / n : p) + (zero >= 2 ? g / n : g) + (zero >= 1 ? k / n : k);
}
