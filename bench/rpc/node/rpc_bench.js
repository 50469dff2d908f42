// The JSON-RPC benchmark's vscode-jsonrpc end (bench/run.sh's "rpc" rows): vscode-jsonrpc's
// MessageConnection over a Unix socket at the .NET pipe path ($TMPDIR/CoreFxPipe_NAME), header
// framing, the same command line as bench/rpc/rpc_bench.cpp (NODE_PATH points at the build
// tree's node_modules):
//   node rpc_bench.js server NAME                 serves `add` [a, b] -> a + b to every client
//                                                 (prints "listening"; until killed)
//   node rpc_bench.js client NAME CLIENTS CALLS   CLIENTS connections at once, CALLS calls in all
'use strict';
const net = require('net');
const os = require('os');
const path = require('path');
const rpc = require('vscode-jsonrpc/node');

function pipePath(name) {
    return path.join(os.tmpdir(), 'CoreFxPipe_' + name);
}

function connectionOf(socket) {
    return rpc.createMessageConnection(new rpc.SocketMessageReader(socket),
                                       new rpc.SocketMessageWriter(socket));
}

function serve(name) {
    const server = net.createServer(socket => {
        const conn = connectionOf(socket);
        conn.onRequest('add', (a, b) => a + b);
        conn.onClose(() => conn.dispose());
        conn.listen();
    });
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    server.listen(pipePath(name), () => console.log('listening'));
}

function percentile(sorted, p) {
    const rank = Math.ceil(p / 100 * sorted.length);
    return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}

async function clients(name, count, calls) {
    const shares = [];
    for (let slot = 0; slot < count; ++slot)
        shares.push(Math.floor(calls / count) + (slot < calls % count ? 1 : 0));
    const conns = await Promise.all(shares.map(async share => {
        const socket = net.createConnection(pipePath(name));
        await new Promise((resolve, reject) => {
            socket.once('connect', resolve);
            socket.once('error', reject);
        });
        const conn = connectionOf(socket);
        conn.listen();
        for (let i = 0, warm = Math.max(100, Math.floor(share / 5)); i < warm; ++i)
            await conn.sendRequest('add', 1, 2);
        return { conn, socket };
    }));
    // Every client connected and warmed up: the timing starts.
    const samples = [];
    const start = process.hrtime.bigint();
    await Promise.all(conns.map(async ({ conn }, slot) => {
        for (let i = 0; i < shares[slot]; ++i) {
            const t0 = process.hrtime.bigint();
            const r = await conn.sendRequest('add', 1, 2);
            const t1 = process.hrtime.bigint();
            if (r !== 3)
                throw new Error('add [1,2] returned ' + JSON.stringify(r));
            samples.push(Number(t1 - t0) / 1000);
        }
    }));
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    for (const { conn, socket } of conns) {
        conn.dispose();
        socket.destroy();
    }
    samples.sort((a, b) => a - b);
    const rate = samples.length / secs;
    console.log(JSON.stringify({
        system: 'vscode-jsonrpc', test: 'rpc', clients: count, count: samples.length,
        calls_per_s: +rate.toFixed(1), rounds: [+rate.toFixed(1)],
        median_us: +percentile(samples, 50).toFixed(3), p99_us: +percentile(samples, 99).toFixed(3),
    }));
}

const [mode, name, n, calls] = process.argv.slice(2);
if (mode === 'server' && name) {
    serve(name);
} else if (mode === 'client' && name && n && calls) {
    clients(name, parseInt(n, 10), parseInt(calls, 10)).catch(e => {
        console.error('rpc_bench.js client: ' + (e && e.stack || e));
        process.exit(1);
    });
} else {
    console.error('usage: rpc_bench.js server NAME | rpc_bench.js client NAME CLIENTS CALLS');
    process.exit(2);
}
