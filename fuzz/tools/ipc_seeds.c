/* Writes the seed corpus of fuzz_ipc (fuzz/corpus/ipc/) with the real encoder: one valid
 * header frame of each message type. Build and run from the repository root:
 *   gcc -std=c11 -Icommon fuzz/tools/ipc_seeds.c common/ipc.c -o /tmp/ipc_seeds
 *   /tmp/ipc_seeds fuzz/corpus/ipc */
#include <stdio.h>
#include <string.h>

#include "ipc.h"

static ipc_hdr_t h;
static unsigned char frame[IPC_HDR_MAX];

static void put(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return;
    }
    fwrite(frame, 1, ipc_encode(&h, frame), f);
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    ipc_hdr_init(&h, IPC_HELLO, 0x1122334455667788ull);
    ipc_hdr_set(&h, 0, "fe1");
    put(dir, "hello");
    ipc_hdr_init(&h, IPC_HEARTBEAT, 42);
    put(dir, "heartbeat");
    ipc_hdr_init(&h, IPC_AUTH, 7);
    h.seq = 1;
    h.status = 1;
    ipc_hdr_set(&h, 0, "alice");
    put(dir, "auth");
    ipc_hdr_init(&h, IPC_AUTH_REPLY, 7);
    h.seq = 1;
    ipc_hdr_set(&h, 0, "4096,W22ZaJ0SNY7soEsUEjb6gQ==,"
                       "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
                       "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
    put(dir, "auth_reply");
    ipc_hdr_init(&h, IPC_BIND, 7);
    h.seq = 2;
    ipc_hdr_set(&h, 0, "alice@localhost/laptop");
    put(dir, "bind");
    ipc_hdr_init(&h, IPC_BIND_REPLY, 7);
    h.seq = 2;
    h.status = IPC_LIMIT;
    ipc_hdr_set(&h, 0, "alice@localhost/laptop");
    put(dir, "bind_reply");
    ipc_hdr_init(&h, IPC_STANZA, 7);
    h.kind = IPC_KIND_MESSAGE;
    h.stype = IPC_ST_CHAT;
    ipc_hdr_set(&h, 0, "bob@localhost");
    ipc_hdr_set(&h, 1, "alice@localhost/laptop");
    ipc_hdr_set(&h, 2, "m1");
    put(dir, "stanza");
    ipc_hdr_init(&h, IPC_UNBIND, 7);
    put(dir, "unbind");
    ipc_hdr_init(&h, IPC_DELIVER, 7);
    h.kind = IPC_KIND_PRESENCE;
    h.stype = IPC_ST_UNAVAILABLE;
    put(dir, "deliver");
    ipc_hdr_init(&h, IPC_CLOSE, 7);
    ipc_hdr_set(&h, 0, "conflict");
    put(dir, "close");
    ipc_hdr_init(&h, IPC_RESYNC, 7);
    h.flags = IPC_RESYNC_AVAILABLE | IPC_RESYNC_INTERESTED;
    h.status = ipc_priority_encode(-5);
    ipc_hdr_set(&h, 0, "alice@localhost/laptop");
    put(dir, "resync");
    ipc_hdr_init(&h, IPC_AUTH_RESULT, 7);
    h.status = IPC_REFUSED;
    ipc_hdr_set(&h, 0, "alice");
    put(dir, "auth_result");
    ipc_hdr_init(&h, IPC_STANZA, 0xffffffffffffffffull);
    h.seq = 0xffffffffu;
    h.kind = IPC_KIND_IQ;
    h.stype = IPC_ST_GET;
    ipc_hdr_set(&h, 3, "four");
    put(dir, "fourth_field");
    return 0;
}
