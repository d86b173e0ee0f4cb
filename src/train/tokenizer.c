/* The byte-level tokenizer: token = byte value, vocabulary of 256. */
#include "hyperspeed/data.h"

void hs_tokenizer_encode(const void *text, size_t n, int32_t *tokens)
{
    const unsigned char *b = text;
    for (size_t i = 0; i < n; i++)
        tokens[i] = b[i];
}

hs_status hs_tokenizer_decode(const int32_t *tokens, size_t n, void *text)
{
    unsigned char *b = text;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= HS_BYTE_VOCAB_SIZE)
            return hs_error(HS_ERR_INVALID_ARGUMENT,
                            "token %d at index %zu is not a byte token (the byte tokenizer's vocabulary is 0..%d)",
                            tokens[i], i, HS_BYTE_VOCAB_SIZE - 1);
        b[i] = (unsigned char)tokens[i];
    }
    return HS_OK;
}
