/* The size tag of the public config structs (docs/api.md, "Config
 * structs"): each begins with `size_t size`, which its *_default() sets to
 * sizeof the struct in the caller's build. The library takes the sizes it
 * knows (today: its own) and refuses others with a message, so a caller
 * built against another version's header fails cleanly instead of reading
 * fields at the wrong offsets. HS_CHECK_SIZE(cfg, type) in an entry point:
 * HS_ERR_INVALID_ARGUMENT naming the struct, the two sizes and the fix. */
#ifndef HS_CORE_CONFIG_SIZE_H
#define HS_CORE_CONFIG_SIZE_H

#include "hyperspeed/core.h"

#include <stddef.h>

hs_status hs_check_config_size(const char *type, size_t got, size_t want);

#define HS_CHECK_SIZE(cfg, type) hs_check_config_size(#type, (cfg)->size, sizeof(type))

#endif
