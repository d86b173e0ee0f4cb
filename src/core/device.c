/* Device handles: their kind and identity. */
#include "core/device.h"

hs_device_kind hs_device_kind_of(const hs_device *d)
{
    return d ? d->kind : HS_DEVICE_CPU;
}

int hs_device_same(const hs_device *a, const hs_device *b)
{
    if (hs_device_kind_of(a) != hs_device_kind_of(b))
        return 0;
    return hs_device_kind_of(a) == HS_DEVICE_CPU || a->npu == b->npu;
}
