// Posts a Slack message for chosen events (destination function), through a Slack incoming
// webhook URL kept in the sensitive setting `webhookUrl`.
//   track    → "*Order Completed* by user_1234 — revenue: 49.99 EUR ..." (only `events`, if set)
//   identify → "New user user_1234 (ada@example.com)"
// Slack answering 429 or 5xx → RetryError (the event is retried); any other error status fails
// the event for good.

async function postToSlack(url, message) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(message),
  })
  if (response.status === 429 || response.status >= 500) {
    throw new RetryError(`Slack answered ${response.status}`)
  }
  if (!response.ok) throw new Error(`Slack answered ${response.status}: ${await response.text()}`)
}

function describe(properties) {
  return Object.entries(properties || {})
    .filter(([, value]) => value !== null && typeof value !== 'object')
    .map(([key, value]) => `${key}: ${value}`)
    .join(', ')
}

async function onTrack(event, settings) {
  const wanted = settings.events || []
  if (wanted.length > 0 && !wanted.includes(event.event)) return
  const who = event.userId || event.anonymousId
  const details = describe(event.properties)
  await postToSlack(settings.webhookUrl, {
    text: `*${event.event}* by ${who}${details ? ` — ${details}` : ''}`,
    username: settings.username || 'fnbox',
  })
  console.log(`posted ${event.event} for ${who}`)
}

async function onIdentify(event, settings) {
  if (!settings.announceNewUsers) return
  const email = event.traits && event.traits.email
  await postToSlack(settings.webhookUrl, {
    text: `New user ${event.userId}${email ? ` (${email})` : ''}`,
    username: settings.username || 'fnbox',
  })
}
