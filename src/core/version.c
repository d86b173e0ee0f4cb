/* The library's version, from the build (CMake's project version), and
 * the config structs' size tags it takes (config_size.h). */
#include "core/config_size.h"

#include <string.h>

#define HS_STR(x) #x
#define HS_XSTR(x) HS_STR(x)

const char *hs_version(int *major, int *minor, int *patch)
{
    if (major)
        *major = HS_LIB_VERSION_MAJOR;
    if (minor)
        *minor = HS_LIB_VERSION_MINOR;
    if (patch)
        *patch = HS_LIB_VERSION_PATCH;
    return HS_XSTR(HS_LIB_VERSION_MAJOR) "." HS_XSTR(HS_LIB_VERSION_MINOR) "." HS_XSTR(HS_LIB_VERSION_PATCH);
}

hs_status hs_check_config_size(const char *type, size_t got, size_t want)
{
    if (got == want)
        return HS_OK;
    if (got == 0)
        return hs_error(HS_ERR_INVALID_ARGUMENT,
                        "%s is not initialised (size 0): start from %s_default()%s and set the fields you need",
                        type, type, strcmp(type, "hs_model_config") == 0 ? " or hs_model_config_preset()" : "");
    return hs_error(HS_ERR_INVALID_ARGUMENT,
                    "%s of %zu bytes, but this library (hyperspeed %s) knows %zu-byte ones: the caller was built "
                    "against another version's headers (rebuild it against those of the library it loads)",
                    type, got, hs_version(NULL, NULL, NULL), want);
}
