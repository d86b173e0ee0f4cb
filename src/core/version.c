/* The library's version, from the build (CMake's project version). */
#include "hyperspeed/core.h"

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
