#include "secret.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "util.h"

static char *read_secret_file(const char *key, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        log_fatal("config: key '%s': cannot open '%s': %s", key, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        log_warn("config: key '%s': '%s' can be read by other users (chmod 600 it)", key, path);
    char line[4096];
    char *value = NULL;
    while (!value && fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strcspn(s, "\r\n");
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        s[n] = '\0';
        if (n && *s != '#')
            value = xstrdup(s);
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (!value)
        log_fatal("config: key '%s': '%s' holds no value", key, path);
    return value;
}

char *secret_from_config(const char *name)
{
    char file_key[128];
    snprintf(file_key, sizeof file_key, "%s_file", name);
    const char *direct = config_str(name), *path = config_str(file_key);
    if (*direct && *path)
        log_fatal("config: keys '%s' and '%s' are both set: use one", name, file_key);
    if (*direct)
        return xstrdup(direct);
    if (*path)
        return read_secret_file(file_key, path);
    return NULL;
}

void secret_free(char **s)
{
    if (!*s)
        return;
    OPENSSL_cleanse(*s, strlen(*s));
    xfree(s);
}
