// Destination insert function: redacts personal data before events reach the destination, and
// drops test traffic with DropEvent (dropped events are not delivered and not retried).
//
// Redacted: the keys listed in the `piiFields` setting (default below), at any depth of
// traits, properties and context.traits, plus context.ip. Test traffic: context.test === true,
// a userId listed in `testUserIds`, or an email at example.com/.org/.net.

const DEFAULT_PII = ['email', 'phone', 'firstName', 'lastName', 'name', 'address', 'birthday']
const TEST_EMAIL = /@example\.(com|org|net)$/i

function redact(value, fields) {
  if (Array.isArray(value)) return value.map((item) => redact(item, fields))
  if (value === null || typeof value !== 'object') return value
  const out = {}
  for (const [key, item] of Object.entries(value)) {
    out[key] = fields.has(key.toLowerCase()) ? '[redacted]' : redact(item, fields)
  }
  return out
}

function isTest(event, settings) {
  const context = event.context || {}
  const email = (event.traits && event.traits.email) || (context.traits && context.traits.email) || ''
  return context.test === true || (settings.testUserIds || []).includes(event.userId) || TEST_EMAIL.test(email)
}

function clean(event, settings) {
  if (isTest(event, settings)) throw new DropEvent(`test event from ${event.userId || event.anonymousId}`)
  const listed = settings.piiFields && settings.piiFields.length > 0 ? settings.piiFields : DEFAULT_PII
  const fields = new Set(listed.map((f) => f.toLowerCase()))
  if (event.traits) event.traits = redact(event.traits, fields)
  if (event.properties) event.properties = redact(event.properties, fields)
  if (event.context) {
    if (event.context.traits) event.context.traits = redact(event.context.traits, fields)
    delete event.context.ip
  }
  return event
}

// Every type has a handler: a type without one would be blocked (Unsupported Event Type).
async function onIdentify(event, settings) { return clean(event, settings) }
async function onTrack(event, settings) { return clean(event, settings) }
async function onPage(event, settings) { return clean(event, settings) }
async function onScreen(event, settings) { return clean(event, settings) }
async function onGroup(event, settings) { return clean(event, settings) }
async function onAlias(event, settings) { return clean(event, settings) }
async function onDelete(event, settings) { return event }
