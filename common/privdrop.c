#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* user and group: read by the processes that drop root, and by the Redis TLS relay. */
const config_key_t privdrop_config_keys[] = {
    CONFIG_STR("user", "", "after binding ports and reading secrets, switch to this user (name or number); empty: no change"),
    CONFIG_STR("group", "", "group to switch to with user; empty: the user's primary group"),
    CONFIG_END,
};

/* A numeric id ("65534") also names a user or group that has no database entry. */
static int parse_id(const char *s, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || n >= (unsigned long)(uid_t)-1)
        return -1;
    *out = n;
    return 0;
}

/* Looks up `group`; 0 with *gid set, or -1. */
static int find_group(const char *group, gid_t *gid, char *name, size_t namelen)
{
    struct group *gr = getgrnam(group);
    unsigned long n;
    if (gr) {
        *gid = gr->gr_gid;
        snprintf(name, namelen, "%s", gr->gr_name);
        return 0;
    }
    if (parse_id(group, &n) < 0)
        return -1;
    *gid = (gid_t)n;
    gr = getgrgid(*gid);
    snprintf(name, namelen, "%s", gr ? gr->gr_name : group);
    return 0;
}

/* The checks after the switch: every id is the target, and root is out of reach. */
static int verify(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != uid ||
        eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
        snprintf(err, errlen, "key 'user': the ids did not change as asked");
        return -1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, errlen, "key 'user': root could be regained after the switch");
        return -1;
    }
    if (gid != 0 && uid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
        snprintf(err, errlen, "key 'group': group root could be regained after the switch");
        return -1;
    }
    return 0;
}

int privdrop_resolve(const char *user, const char *group, privdrop_ids_t *ids, char *err,
                     size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    unsigned long n;
    ids->has_entry = pw != NULL;
    if (pw) {
        ids->uid = pw->pw_uid;
        ids->gid = pw->pw_gid;
        snprintf(ids->uname, sizeof ids->uname, "%s", pw->pw_name);
    } else if (parse_id(user, &n) == 0) {
        ids->uid = (uid_t)n;
        pw = getpwuid(ids->uid);
        ids->has_entry = pw != NULL;
        ids->gid = pw ? pw->pw_gid : (gid_t)n;
        snprintf(ids->uname, sizeof ids->uname, "%s", pw ? pw->pw_name : user);
    } else {
        snprintf(err, errlen, "key 'user': no such user '%s'", user);
        return -1;
    }
    if (*group) {
        if (find_group(group, &ids->gid, ids->gname, sizeof ids->gname) < 0) {
            snprintf(err, errlen, "key 'group': no such group '%s'", group);
            return -1;
        }
    } else {
        struct group *gr = getgrgid(ids->gid);
        snprintf(ids->gname, sizeof ids->gname, "%s", gr ? gr->gr_name : "?");
    }
    return 0;
}

int privdrop_apply(const char *user, const char *group, char *err, size_t errlen)
{
    if (!*user) {
        if (*group) {
            snprintf(err, errlen, "key 'group': '%s' is set but 'user' is not", group);
            return -1;
        }
        if (geteuid() == 0)
            log_warn("running as root: set 'user' (and 'group') to drop privileges after start");
        return 0;
    }
    privdrop_ids_t ids;
    if (privdrop_resolve(user, group, &ids, err, errlen) < 0)
        return -1;
    uid_t uid = ids.uid;
    gid_t gid = ids.gid;
    const char *uname = ids.uname, *gname = ids.gname;

    if (geteuid() != 0) {
        /* Already someone else: fine if it is the one asked for, else we cannot switch. */
        if (getuid() == uid && geteuid() == uid && getgid() == gid && getegid() == gid) {
            log_info("running as user %s (uid %lu), group %s (gid %lu)", uname,
                     (unsigned long)uid, gname, (unsigned long)gid);
            return 0;
        }
        snprintf(err, errlen, "key 'user': cannot switch to '%s': not running as root", user);
        return -1;
    }
    /* Order matters: groups and gid while still root, the uid last. */
    int rc = ids.has_entry ? initgroups(uname, gid) : setgroups(1, &gid);
    if (rc < 0) {
        snprintf(err, errlen, "key 'user': cannot set the groups of '%s': %s", user,
                 strerror(errno));
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0) {
        snprintf(err, errlen, "key 'group': cannot switch to gid %lu: %s", (unsigned long)gid,
                 strerror(errno));
        return -1;
    }
    if (setresuid(uid, uid, uid) < 0) {
        snprintf(err, errlen, "key 'user': cannot switch to uid %lu: %s", (unsigned long)uid,
                 strerror(errno));
        return -1;
    }
    if (verify(uid, gid, err, errlen) < 0)
        return -1;
    if (uid == 0)
        log_warn("key 'user': '%s' is root: privileges not dropped", user);
    else
        log_info("dropped privileges: now user %s (uid %lu), group %s (gid %lu)", uname,
                 (unsigned long)uid, gname, (unsigned long)gid);
    return 0;
}
