#!/usr/bin/env node
// Centinela from Node.js: health, one shipment, a bad one, a manifest stream, an outcome.
//
//   cd clients/node && npm ci
//   node example.js --target 127.0.0.1:50051
//   node example.js --target scoring.example:50051 --ca ca.pem --token "$TOKEN"
//
// Flags fall back to the environment: CENTINELA_TARGET, CENTINELA_TOKEN (sent as
// "authorization: Bearer ..."), CENTINELA_CA (PEM: use TLS), CENTINELA_CERT and CENTINELA_KEY
// (a client certificate, for mutual TLS), CENTINELA_SERVER_NAME (the name the server
// certificate carries, when it is not the target's host). Scoring needs the role "scorer",
// outcomes "reporter"; health needs nothing.
//
// The .proto files come from ../proto (clients/proto): Centinela's contract, the standard
// health service and google.rpc's Status and BadRequest. @grpc/proto-loader reads them at run
// time; with its default options messages use the JSON (lowerCamelCase) field names.

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = path.resolve(__dirname, '..', 'proto');

const LOADER_OPTIONS = {
  includeDirs: [PROTO_DIR],
  longs: String, // int64 (Timestamp.seconds) as strings: no precision lost
  enums: String, // enum values by name: "LANE_RED"
  defaults: true, // unset fields as their defaults, as protobuf's JSON mapping reads them
  oneofs: true,
};

const definition = protoLoader.loadSync(
  ['centinela/v1/risk_scoring.proto', 'grpc/health/v1/health.proto'],
  LOADER_OPTIONS,
);
const loaded = grpc.loadPackageDefinition(definition);
const { RiskScoring } = loaded.centinela.v1;
const { Health } = loaded.grpc.health.v1;

// google.rpc.Status and BadRequest, to read the details of an INVALID_ARGUMENT. The server
// sends them in the binary trailer grpc-status-details-bin.
const rpcTypes = new protobuf.Root();
rpcTypes.resolvePath = (origin, target) =>
  target.startsWith('google/protobuf/') ? target : path.join(PROTO_DIR, target);
rpcTypes.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
const Status = rpcTypes.lookupType('google.rpc.Status');
const BadRequest = rpcTypes.lookupType('google.rpc.BadRequest');

function options() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      target: { type: 'string', default: env.CENTINELA_TARGET || '127.0.0.1:50051' },
      token: { type: 'string', default: env.CENTINELA_TOKEN || '' },
      ca: { type: 'string', default: env.CENTINELA_CA || '' },
      cert: { type: 'string', default: env.CENTINELA_CERT || '' },
      key: { type: 'string', default: env.CENTINELA_KEY || '' },
      'server-name': { type: 'string', default: env.CENTINELA_SERVER_NAME || '' },
      timeout: { type: 'string', default: '10' },
    },
  });
  return values;
}

function channelCredentials(opts) {
  if (!opts.ca) return { credentials: grpc.credentials.createInsecure(), channelOptions: {} };
  const credentials = grpc.credentials.createSsl(
    fs.readFileSync(opts.ca),
    opts.key ? fs.readFileSync(opts.key) : null,
    opts.cert ? fs.readFileSync(opts.cert) : null,
  );
  const channelOptions = opts['server-name']
    ? { 'grpc.ssl_target_name_override': opts['server-name'] }
    : {};
  return { credentials, channelOptions };
}

// A google.protobuf.Timestamp is {seconds, nanos} for @grpc/proto-loader, never an RFC 3339
// string (that is the JSON mapping, which grpcurl uses).
function timestamp(date) {
  const millis = date.getTime();
  return { seconds: String(Math.floor(millis / 1000)), nanos: (millis % 1000) * 1e6 };
}

// A sea shipment to Manzanillo declared now (live scoring takes current declarations).
function shipment(shipmentId) {
  return {
    shipmentId,
    declaredAt: timestamp(new Date()),
    portOfEntry: 'MXZLO',
    mode: 'MODE_SEA',
    originCountry: 'CN',
    exportCountry: 'CN',
    transshipmentPorts: ['KRPUS'],
    carrier: 'Pacific Orient Lines',
    conveyanceId: 'IMO9811000',
    containerId: 'MSCU1234565',
    shipper: { id: 'SHP-CN-0001', name: 'Shanghai Jinhua Trading Co.', country: 'CN' },
    consignee: {
      id: 'CNE-000123',
      name: 'Distribuidora Química del Pacífico',
      country: 'MX',
      taxId: 'DQP190101AB1',
    },
    brokerId: 'BRK-0042',
    goods: [
      {
        hsCode: '293337',
        description: '1-phenethyl-4-piperidone 99% 25 kg drums',
        casNumbers: ['39742-60-4'],
        quantity: 20,
        unit: 'DRUM',
        grossWeightKg: 520,
        declaredValueUsd: 18000,
      },
    ],
  };
}

function describe(d) {
  const reason = d.reasons.length ? d.reasons[0].messageEn : '-';
  return (
    `decision=${d.decisionId} shipment=${d.shipmentId} lane=${d.lane} ` +
    `risk=${d.riskScore.toFixed(4)} exam=${d.exam} hits=${d.watchlistHits.length} reason=${reason}`
  );
}

// The google.rpc.BadRequest field violations carried by a failed call.
function fieldViolations(error) {
  const [raw] = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  if (!raw) return [];
  const status = Status.decode(raw);
  const found = [];
  for (const detail of status.details) {
    // google.protobuf.Any comes from protobufjs's bundled copy, which keeps snake_case names.
    const typeUrl = detail.type_url || detail.typeUrl || '';
    if (typeUrl.endsWith('/google.rpc.BadRequest')) {
      for (const v of BadRequest.decode(detail.value).fieldViolations) {
        found.push(`${v.field}: ${v.description}`);
      }
    }
  }
  return found;
}

function unary(client, method, request, metadata, timeoutS) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutS * 1000);
    client[method](request, metadata, { deadline }, (error, reply) =>
      error ? reject(error) : resolve(reply),
    );
  });
}

function stream(client, requests, metadata, timeoutS) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + timeoutS * 1000);
    const call = client.ScoreShipments(metadata, { deadline });
    const replies = [];
    call.on('data', (reply) => replies.push(reply));
    call.on('error', reject);
    call.on('end', () => resolve(replies));
    for (const request of requests) call.write(request);
    call.end();
  });
}

async function main() {
  const opts = options();
  const timeoutS = Number(opts.timeout);
  const { credentials, channelOptions } = channelCredentials(opts);
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
  const run = new Date().toISOString().replace(/\D/g, '');

  // 1. Health: no credentials needed. SERVING once a model and watchlist are loaded.
  const health = new Health(opts.target, credentials, channelOptions);
  const status = await unary(health, 'Check', { service: '' }, new grpc.Metadata(), timeoutS);
  console.log(`health: ${status.status}`);
  health.close();

  const scoring = new RiskScoring(opts.target, credentials, channelOptions);
  try {
    // 2. One shipment.
    const decision = await unary(
      scoring,
      'ScoreShipment',
      { shipment: shipment(`JS-${run}-1`) },
      metadata,
      timeoutS,
    );
    console.log(`score: ${describe(decision)}`);

    // 3. A bad shipment: INVALID_ARGUMENT with a google.rpc.BadRequest naming every field.
    const bad = shipment(`JS-${run}-BAD`);
    bad.goods[0].hsCode = 'ABC';
    bad.goods[0].grossWeightKg = -5;
    try {
      await unary(scoring, 'ScoreShipment', { shipment: bad }, metadata, timeoutS);
      console.log('invalid: unexpectedly accepted');
      process.exitCode = 1;
      return;
    } catch (error) {
      if (error.code !== grpc.status.INVALID_ARGUMENT) throw error;
      console.log('invalid: INVALID_ARGUMENT');
      for (const violation of fieldViolations(error)) console.log(`invalid:   ${violation}`);
    }

    // 4. A manifest as a stream: one Decision per shipment, in order; a bad shipment gets a
    // Decision carrying its error and the stream goes on.
    const manifest = [0, 1, 2].map((i) => ({ shipment: shipment(`JS-${run}-M${i}`) }));
    manifest[1].shipment.portOfEntry = 'not a port';
    const replies = await stream(scoring, manifest, metadata, timeoutS);
    replies.forEach((reply, i) => {
      if (reply.error) {
        const fields = reply.error.fieldViolations.map((v) => v.field).join(', ');
        console.log(`manifest[${i}]: error ${reply.error.code} (${fields})`);
      } else {
        console.log(`manifest[${i}]: ${describe(reply)}`);
      }
    });

    // 5. The inspection outcome, against the decision id; the same report again is a repeat.
    const outcome = {
      decisionId: decision.decisionId,
      inspected: true,
      result: 'negative',
      notes: 'documentary review, nothing found',
    };
    for (let i = 0; i < 2; i += 1) {
      const ack = await unary(scoring, 'RecordOutcome', outcome, metadata, timeoutS);
      console.log(
        `outcome: decision=${ack.decisionId} version=${ack.version} duplicate=${ack.duplicate}`,
      );
    }
  } finally {
    scoring.close();
  }
}

main().catch((error) => {
  const code = error.code !== undefined ? `${grpc.status[error.code]}: ` : '';
  console.error(`error: ${code}${error.details || error.message}`);
  process.exitCode = 1;
});
