/* The upload process's files on disk (store.h). */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "util.h"

#define STORE_MAGIC "XUP1\n"
#define STORE_HEADER_MAX 8192

static int is_id(const char *id)
{
    if (strlen(id) != UPSLOT_ID_LEN)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int path_of(const store_t *s, const char *id, char *out, size_t n)
{
    if (!is_id(id))
        return -1;
    int r = snprintf(out, n, "%s/%.2s/%s", s->dir, id, id);
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

int store_init(store_t *s, const char *dir, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    if (!*dir || strlen(dir) > PATH_MAX - 64) {
        snprintf(err, errlen, "key 'upload_dir': '%s' is not a usable directory", dir);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    if ((mkdir(dir, 0750) < 0 && errno != EEXIST) || (mkdir(tmp, 0750) < 0 && errno != EEXIST) ||
        access(tmp, W_OK) < 0) {
        snprintf(err, errlen, "key 'upload_dir': cannot use '%s': %s", dir, strerror(errno));
        return -1;
    }
    s->dir = xstrdup(dir);
    return 0;
}

void store_close(store_t *s)
{
    free(s->dir);
    s->dir = NULL;
}

int store_exists(const store_t *s, const char *id)
{
    char p[PATH_MAX];
    struct stat st;
    return path_of(s, id, p, sizeof p) == 0 && lstat(p, &st) == 0;
}

int store_write(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_error_errno("upload: writing a file");
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

int store_begin(const store_t *s, const char *id, const store_meta_t *m, char *tmp, size_t n)
{
    /* One temporary name per slot: O_EXCL lets one PUT at a time write a slot's file,
     * whichever of the processes sharing the directory it reaches, so concurrent PUTs of
     * one slot cannot fill the disk with copies (the others get 409 at once). */
    int r = snprintf(tmp, n, "%s/tmp/%s.part", s->dir, id);
    if (r < 0 || (size_t)r >= n || !is_id(id))
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) {
        int busy = errno == EEXIST;
        if (!busy)
            log_error_errno("upload: cannot create %s", tmp);
        tmp[0] = '\0';
        return busy ? -2 : -1;
    }
    buf_t h = BUF_INIT;
    buf_printf(&h, STORE_MAGIC "%s\n%s\n%s\n%lld\n%lld\n", m->bare, m->ctype, m->name, m->size,
               m->created);
    int ok = store_write(fd, h.data, h.len) == 0;
    buf_free(&h);
    if (!ok) {
        store_abort(s, fd, tmp);
        tmp[0] = '\0';
        return -1;
    }
    return fd;
}

void store_abort(const store_t *s, int fd, const char *tmp)
{
    (void)s;
    if (fd >= 0)
        close(fd);
    if (tmp && tmp[0])
        unlink(tmp);
}

int store_commit(const store_t *s, int fd, const char *tmp, const char *id)
{
    char final[PATH_MAX], sub[PATH_MAX];
    int rc = -1;
    if (fdatasync(fd) < 0) {
        log_error_errno("upload: syncing %s", tmp);
        goto out;
    }
    if (path_of(s, id, final, sizeof final) < 0)
        goto out;
    snprintf(sub, sizeof sub, "%s/%.2s", s->dir, id);
    if (mkdir(sub, 0750) < 0 && errno != EEXIST) {
        log_error_errno("upload: cannot create %s", sub);
        goto out;
    }
    /* link() never replaces: the first PUT of a slot wins, the second learns EEXIST. */
    if (link(tmp, final) < 0) {
        if (errno == EEXIST)
            rc = 1;
        else
            log_error_errno("upload: cannot link %s to %s", tmp, final);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    unlink(tmp);
    return rc;
}

int store_header_parse(const char *data, size_t n, store_file_t *f)
{
    const char *end = data + n, *p = data;
    if (n < 5 || memcmp(data, STORE_MAGIC, 5) != 0)
        return -1;
    p += 5;
    const char *line[5];
    size_t len[5];
    for (int i = 0; i < 5; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return -1;
        line[i] = p;
        len[i] = (size_t)(nl - p);
        p = nl + 1;
    }
    if (len[0] == 0 || len[0] > JID_MAX || len[1] > UPSLOT_CTYPE_MAX || len[2] == 0 ||
        len[2] > UPSLOT_NAME_MAX || len[3] == 0 || len[3] > 18 || len[4] == 0 || len[4] > 18)
        return -1;
    memcpy(f->bare, line[0], len[0]);
    f->bare[len[0]] = '\0';
    memcpy(f->ctype, line[1], len[1]);
    f->ctype[len[1]] = '\0';
    memcpy(f->name, line[2], len[2]);
    f->name[len[2]] = '\0';
    if (strlen(f->bare) != len[0] || strlen(f->ctype) != len[1] || strlen(f->name) != len[2])
        return -1;
    long long v[2];
    for (int i = 0; i < 2; i++) {
        v[i] = 0;
        for (size_t k = 0; k < len[3 + i]; k++) {
            char c = line[3 + i][k];
            if (c < '0' || c > '9')
                return -1;
            v[i] = v[i] * 10 + (c - '0');
        }
    }
    f->size = v[0];
    f->created = v[1];
    f->data_off = (long long)(p - data);
    return 0;
}

int store_open(const store_t *s, const char *id, store_file_t *f)
{
    char path[PATH_MAX];
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (path_of(s, id, path, sizeof path) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    char *hdr = xmalloc(STORE_HEADER_MAX);
    ssize_t n = pread(fd, hdr, STORE_HEADER_MAX, 0);
    struct stat st;
    int ok = n > 0 && store_header_parse(hdr, (size_t)n, f) == 0 && fstat(fd, &st) == 0 &&
             S_ISREG(st.st_mode) && st.st_size == f->data_off + f->size;
    free(hdr);
    if (!ok) {
        log_warn("upload: %s is not a complete stored file: ignored", path);
        close(fd);
        return -1;
    }
    f->fd = fd;
    return 0;
}

void store_file_close(store_file_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

void store_remove(const store_t *s, const char *id)
{
    char path[PATH_MAX];
    if (path_of(s, id, path, sizeof path) == 0 && unlink(path) < 0 && errno != ENOENT)
        log_warn_errno("upload: cannot delete %s", path);
}

void store_each(const store_t *s, void (*fn)(const char *id, long long now, long long exp),
                long long now, long long exp)
{
    DIR *top = opendir(s->dir);
    if (!top)
        return;
    struct dirent *e;
    while ((e = readdir(top))) {
        if (strlen(e->d_name) != 2 || strspn(e->d_name, "0123456789abcdef") != 2)
            continue;
        char sub[PATH_MAX + 256];
        snprintf(sub, sizeof sub, "%s/%s", s->dir, e->d_name);
        DIR *d = opendir(sub);
        if (!d)
            continue;
        struct dirent *f;
        while ((f = readdir(d)))
            if (is_id(f->d_name) && strncmp(f->d_name, e->d_name, 2) == 0)
                fn(f->d_name, now, exp);
        closedir(d);
    }
    closedir(top);
}

void store_sweep_tmp(const store_t *s, long long before)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tmp", s->dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[PATH_MAX + 256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (long long)st.st_mtime < before)
            unlink(p);
    }
    closedir(d);
}
