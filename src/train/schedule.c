/* Learning-rate schedule: linear warmup, cosine decay. */
#include "hyperspeed/train.h"

#include <math.h>

float hs_lr_at(const hs_lr_schedule *s, int64_t step)
{
    if (step < s->warmup)
        return s->max_lr * (float)(step + 1) / (float)s->warmup;
    if (step >= s->total || s->total <= s->warmup)
        return s->min_lr;
    double progress = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    double cosine = 0.5 * (1.0 + cos(M_PI * progress));
    return s->min_lr + (float)(cosine * (s->max_lr - s->min_lr));
}
