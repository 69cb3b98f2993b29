// Preloaded into a third-party Node server (`node --require listen_fd.cjs server.js`): every listen() serves on the
// inherited, already bound socket TOOLHUB_LISTEN_FD instead of the port the server asked for. The test binds the
// socket itself (tests/support/servers.py), so no other process can take the port in between.
"use strict";
const net = require("net");
const fd = Number(process.env.TOOLHUB_LISTEN_FD);
if (Number.isInteger(fd)) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    const callback = args.find((arg) => typeof arg === "function");
    return listen.call(this, { fd }, callback);
  };
}
