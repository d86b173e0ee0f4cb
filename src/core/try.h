/* HS_TRY(expr): evaluate a call returning hs_status and return its status
 * from the enclosing function when it failed (the message is already set). */
#ifndef HS_CORE_TRY_H
#define HS_CORE_TRY_H

#define HS_TRY(expr)                                                                                                   \
    do {                                                                                                               \
        hs_status hs_try_status_ = (expr);                                                                             \
        if (hs_try_status_ != HS_OK)                                                                                   \
            return hs_try_status_;                                                                                     \
    } while (0)

#endif
