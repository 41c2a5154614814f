// Stripe webhook → Segment events (source function), with Stripe's signature check.
//
// Stripe signs each delivery: header `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`,
// computed over "<t>.<raw body>" with the endpoint's signing secret (setting `signingSecret`).
// A delivery whose signature does not match is rejected with ValidationError (not retried).
//   customer.created / customer.updated → identify
//   charge.succeeded → "Order Completed", charge.refunded → "Order Refunded"
//   invoice.paid → "Invoice Paid"; other types are logged and ignored.

function verifySignature(request, secret, toleranceSeconds) {
  const header = request.headers.get('Stripe-Signature')
  if (!header) throw new ValidationError('missing Stripe-Signature header')
  let timestamp = ''
  const signatures = []
  for (const item of header.split(',')) {
    const [key, value] = item.split('=')
    if (key === 't') timestamp = value
    if (key === 'v1') signatures.push(value)
  }
  // request.text() is the raw body: the signature covers the bytes exactly as Stripe sent them.
  const expected = crypto
    .createHmac('sha256', secret)
    .update(`${timestamp}.${request.text()}`, 'utf8')
    .digest('hex')
  const matches = signatures.some(
    (s) => s.length === expected.length && crypto.timingSafeEqual(Buffer.from(s), Buffer.from(expected)),
  )
  if (!timestamp || !matches) throw new ValidationError('invalid Stripe signature')
  const age = Math.abs(Date.now() / 1000 - Number(timestamp))
  if (toleranceSeconds > 0 && age > toleranceSeconds) {
    throw new ValidationError(`Stripe signature is ${Math.round(age)} s old`)
  }
}

async function onRequest(request, settings) {
  verifySignature(request, settings.signingSecret, Number(settings.toleranceSeconds || 0))

  const event = request.json()
  const object = event.data.object
  const timestamp = new Date(event.created * 1000).toISOString()
  const metadata = object.metadata || {}
  // Your own user id when you store it in Stripe metadata, else the Stripe customer id.
  const userId = metadata.userId || (object.object === 'customer' ? object.id : object.customer)
  const common = { userId, timestamp, messageId: event.id, context: { source: 'stripe', livemode: event.livemode } }

  switch (event.type) {
    case 'customer.created':
    case 'customer.updated':
      Segment.identify({
        ...common,
        traits: { email: object.email, name: object.name, stripeCustomerId: object.id },
      })
      break
    case 'charge.succeeded':
    case 'charge.refunded':
      Segment.track({
        ...common,
        event: event.type === 'charge.succeeded' ? 'Order Completed' : 'Order Refunded',
        properties: {
          orderId: metadata.orderId || object.id,
          revenue: (event.type === 'charge.succeeded' ? object.amount : -object.amount_refunded) / 100,
          currency: object.currency.toUpperCase(),
          paymentMethod: object.payment_method_details ? object.payment_method_details.type : undefined,
        },
      })
      break
    case 'invoice.paid':
      Segment.track({
        ...common,
        event: 'Invoice Paid',
        properties: { invoiceId: object.id, total: object.total / 100, currency: object.currency.toUpperCase() },
      })
      break
    default:
      console.log(`ignored ${event.type}`)
  }
}
