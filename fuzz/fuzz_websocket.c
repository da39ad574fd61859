/* libFuzzer harness for XMPP over WebSocket (c2s-frontend/websocket.c): the fuzz_stream
 * harness, with its input format and router script, on a connection accepted on a
 * WebSocket listener. The client bytes go through the HTTP upgrade and wslay's framing
 * into the same stream code; reads starting with WSHS, WSTX, WSFR or WSCT are turned into
 * a valid upgrade request or a masked frame (fuzz_stream.c, ws_frame_chunk).
 *
 * Checked, besides memory errors: everything fuzz_stream checks of the session (no
 * authentication before TLS while required, only alice, bound only after authentication,
 * stanzas forwarded as the bound JID), whatever the framing around them. */
#define FUZZ_WEBSOCKET 1
#include "fuzz_stream.c"
