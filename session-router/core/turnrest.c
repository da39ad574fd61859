#include "turnrest.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "scram.h"

char *turnrest_credentials(const char *secret, const char *user, char sep, int64_t expiry,
                           char *username, size_t size)
{
    int n = snprintf(username, size, "%" PRId64 "%c%s", expiry, sep, user);
    if (n < 0 || (size_t)n >= size)
        return NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)username,
              (size_t)n, mac, &maclen))
        return NULL;
    return base64_encode(mac, maclen);
}

void turnrest_datetime(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
