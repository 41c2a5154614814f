// Sends events in bulk to an ingestion API (destination function with onBatch).
//
// One POST per batch to the `apiUrl` setting, `Authorization: Bearer <apiKey>`, body
// {"batch": [...]}. onBatch returns one {status, errormessage} per event, in input order:
//   - events without a userId: 400 "userId is required" (not sent; a final failure);
//   - the others: 200 when the API accepted the batch, else the API's status — 429 and 5xx
//     entries are retried on their own, other 4xx are final.
// The single-event handlers next to onBatch take the same path: they are used when an event
// arrives alone (no batching, or very low traffic).

function record(event) {
  return {
    id: event.messageId,
    type: event.type,
    userId: event.userId,
    name: event.event || event.name || event.type,
    attributes: event.type === 'identify' ? event.traits || {} : event.properties || {},
    time: event.timestamp,
  }
}

async function onBatch(events, settings) {
  const statuses = new Array(events.length)
  const sent = []
  events.forEach((event, i) => {
    if (event.userId) sent.push(i)
    else statuses[i] = { status: 400, errormessage: 'userId is required' }
  })
  if (sent.length > 0) {
    const response = await fetch(settings.apiUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${settings.apiKey}` },
      body: JSON.stringify({ batch: sent.map((i) => record(events[i])) }),
    })
    const answer = response.ok ? { status: 200 } : { status: response.status, errormessage: `API answered ${response.status}` }
    for (const i of sent) statuses[i] = answer
    console.log(`sent ${sent.length} of ${events.length} events: ${response.status}`)
  }
  return statuses
}

async function sendOne(event, settings) {
  const [result] = await onBatch([event], settings)
  if (result.status === 429 || result.status >= 500) throw new RetryError(result.errormessage)
  if (result.status >= 400) throw new InvalidEventPayload(result.errormessage)
}

async function onTrack(event, settings) { await sendOne(event, settings) }
async function onIdentify(event, settings) { await sendOne(event, settings) }
async function onPage(event, settings) { await sendOne(event, settings) }
