// vscode-jsonrpc peer for tests/rpc/rpc_peer_test.cpp (header framing, vscode-jsonrpc's own
// pipe transports). NODE_PATH points at the build tree's node_modules. Usage:
//   node rpc_peer.js server SOCKET_PATH  connects to the C++ end's socket and serves methods
//                                         until it leaves (LSP's createServerPipeTransport)
//   node rpc_peer.js client              creates its own pipe (generateRandomPipeName, in
//                                         $XDG_RUNTIME_DIR or the temp dir), prints
//                                         "pipe: PATH", waits for the C++ end to connect, runs
//                                         its checks ("ok: ..." each); exit code 0 when all pass
'use strict';
const rpc = require('vscode-jsonrpc/node');

function check(ok, what) {
    if (!ok) throw new Error('check failed: ' + what);
    console.log('ok: ' + what);
}

async function server(path) {
    const [reader, writer] = rpc.createServerPipeTransport(path);
    const conn = rpc.createMessageConnection(reader, writer);
    let sawCancel;
    const cancelled = new Promise(resolve => { sawCancel = resolve; });
    // A string-method handler gets the params spread (by position) or the object (by name).
    conn.onRequest('add', (a, b) => (typeof a === 'object' ? a.a + a.b : a + b));
    conn.onRequest('fail', () => { throw new rpc.ResponseError(4711, 'it failed', { detail: 'why' }); });
    conn.onRequest('slow', token => new Promise((resolve, reject) => {
        // Tells the caller it runs: vscode-jsonrpc drops a cancel that comes before that.
        conn.sendNotification('entered');
        const timer = setTimeout(() => resolve(0), 60000);
        token.onCancellationRequested(() => {
            clearTimeout(timer);
            sawCancel(true);
            reject(new rpc.ResponseError(-32800, 'cancelled'));
        });
    }));
    conn.onRequest('was_cancelled', () =>
        Promise.race([cancelled, new Promise(r => setTimeout(() => r(false), 30000))]));
    conn.onRequest('ask_back', async x => (await conn.sendRequest('twice', x)) + 1);
    const closed = new Promise(resolve => conn.onClose(resolve));
    conn.listen();
    await closed;
}

async function client() {
    const path = rpc.generateRandomPipeName();
    const transport = await rpc.createClientPipeTransport(path);
    console.log('pipe: ' + path);
    const [reader, writer] = await transport.onConnected();
    const conn = rpc.createMessageConnection(reader, writer);
    let entered;
    const enteredP = new Promise(resolve => { entered = resolve; });
    conn.onNotification('entered', () => entered());
    conn.onRequest('twice', x => 2 * x);
    conn.listen();
    check(await conn.sendRequest('add', 2, 3) === 5, 'add by position');
    check(await conn.sendRequest('add', { a: 4, b: 5 }) === 9, 'add by name');
    check(await conn.sendRequest('ask_back', 20) === 41, 'callback during a call');
    try {
        await conn.sendRequest('fail');
        check(false, 'fail throws');
    } catch (e) {
        check(e.code === 4711 && e.message === 'it failed' && e.data && e.data.detail === 'why',
              'error with data');
    }
    try {
        await conn.sendRequest('no_such_method');
        check(false, 'unknown method throws');
    } catch (e) {
        check(e.code === rpc.ErrorCodes.MethodNotFound, 'method not found');
    }
    const source = new rpc.CancellationTokenSource();
    const call = conn.sendRequest('wait_cancel', source.token);
    await enteredP;
    source.cancel();
    try {
        await call;
        check(false, 'cancelled call throws');
    } catch (e) {
        check(e.code === -32800,  // LSP's RequestCancelled
              'cancellation from Node');
    }
    check(await conn.sendRequest('was_cancelled') === true, 'the C++ handler saw the cancel');
    conn.dispose();
    process.exit(0);
}

const [mode, path] = process.argv.slice(2);
(mode === 'server' ? server(path) : client()).then(
    () => process.exit(0),
    e => { console.error(String(e && e.stack || e)); process.exit(1); });
