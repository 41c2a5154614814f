// GitHub webhook → Segment events (source function).
//
// Point a GitHub webhook (content type application/json) at the source instance's webhook URL.
// Every delivery identifies its sender and tracks one event:
//   push → "Code Pushed", issues → "Issue <Action>", pull_request → "Pull Request <Action>"
//   (a merged close is "Pull Request Merged"), star → "Repository Starred"/"Repository Unstarred".
// GitHub's "ping" delivery emits nothing; other event types are EventNotSupported.

const TITLE = (word) => word.split('_').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(' ')

async function onRequest(request, settings) {
  const kind = request.headers.get('X-GitHub-Event')
  if (!kind) throw new InvalidEventPayload('missing X-GitHub-Event header')
  if (kind === 'ping') return

  const body = request.json()
  const repository = body.repository ? body.repository.full_name : undefined
  const allowed = settings.repositories || []
  if (allowed.length > 0 && !allowed.includes(repository)) {
    console.log(`ignoring ${kind} from ${repository}`)
    return
  }

  const sender = body.sender || {}
  const userId = `github:${sender.id}`
  // The delivery id makes the messageIds stable, so a redelivered webhook is deduplicated.
  const delivery = request.headers.get('X-GitHub-Delivery') || ''

  Segment.identify({
    userId,
    messageId: delivery && `${delivery}-identify`,
    traits: { username: sender.login, avatar: sender.avatar_url, githubUrl: sender.html_url },
  })

  const track = (event, properties, timestamp) =>
    Segment.track({
      event,
      userId,
      properties: { repository, ...properties },
      timestamp,
      messageId: delivery && `${delivery}-${kind}`,
      context: { source: 'github' },
    })

  switch (kind) {
    case 'push': {
      const commits = body.commits || []
      const properties = {
        branch: body.ref.replace(/^refs\/heads\//, ''),
        commits: commits.length,
        forced: body.forced,
        compareUrl: body.compare,
      }
      if (settings.includeCommitMessages) properties.messages = commits.map((c) => c.message)
      track('Code Pushed', properties, body.head_commit && body.head_commit.timestamp)
      break
    }
    case 'issues':
      track(`Issue ${TITLE(body.action)}`, {
        number: body.issue.number,
        title: body.issue.title,
        labels: body.issue.labels.map((l) => l.name),
      }, body.issue.updated_at)
      break
    case 'pull_request': {
      const pr = body.pull_request
      const action = body.action === 'closed' && pr.merged ? 'merged' : body.action
      track(`Pull Request ${TITLE(action)}`, {
        number: pr.number,
        title: pr.title,
        additions: pr.additions,
        deletions: pr.deletions,
      }, pr.updated_at)
      break
    }
    case 'star':
      track(body.action === 'deleted' ? 'Repository Unstarred' : 'Repository Starred', {
        stars: body.repository.stargazers_count,
      }, body.starred_at || undefined)
      break
    default:
      throw new EventNotSupported(`${kind} not supported`)
  }
}
