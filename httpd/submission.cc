/*
 * From the parsed fields to the answer: honeypot, CSRF, validation,
 * idempotency, templates, dry run, submission to the relayer, and the one
 * place every answer goes through (finish).
 */
#include <time.h>

#include "csrf.h"
#include "digest.h"
#include "endpoint.h"
#include "json_body.h"
#include "reply.h"
#include "common/text.h"

namespace posthorn::http {

namespace {

constexpr size_t kMaxOverride = 50;

const std::string *field(const Fields &f, const std::string &name)
{
	auto it = f.find(name);
	return it == f.end() ? nullptr : &it->second;
}

bool present(const Fields &f, const std::string &name)
{
	const std::string *v = field(f, name);
	return v && !trim(*v).empty();
}

bool good_address(std::string_view a)
{
	return header_safe(a) && valid_addr_spec(trim(a));
}

bool type_allowed(const std::string &type, const std::vector<std::string> &allowed)
{
	for (const std::string &a : allowed) {
		if (a == type)
			return true;
		if (a.size() > 2 && a.compare(a.size() - 2, 2, "/*") == 0 &&
		    type.compare(0, a.size() - 1, a, 0, a.size() - 1) == 0)
			return true;
	}
	return false;
}

/* A file name the message may carry: no path, no control characters. */
std::string safe_filename(std::string_view name)
{
	std::string out = header_text(name, 200);
	for (char &c : out)
		if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/' || c == '\\')
			c = '_';
	if (out.empty() || out == "." || out == "..")
		out = "attachment";
	return out;
}

std::string with_error(const std::string &url, std::string_view code)
{
	return url + (url.find('?') == std::string::npos ? "?" : "&") + "error=" + std::string(code);
}

} // namespace

bool Endpoint::honeypot(Request &rq)
{
	if (api() || cfg_.honeypot.empty() || !present(rq.fields, cfg_.honeypot))
		return false;
	svc_.stats.add("posthorn_spam_blocked_total", {cfg_.path, "honeypot"});
	log(LogLevel::info, "spam_blocked", rq, LogField("kind", "honeypot"));
	finish(rq, cfg_.dry_run ? dry_run_reply(rq, prepare(rq)) : success_reply(rq));
	return true;
}

bool Endpoint::check_csrf(Request &rq)
{
	if (api() || cfg_.csrf_secret.empty())
		return true;
	const std::string *token = field(rq.fields, std::string(CSRF_FIELD));
	CsrfResult res = csrf_verify(token ? std::string_view(*token) : std::string_view(),
	    cfg_.csrf_secret, cfg_.csrf_token_ttl, int64_t(time(nullptr)));
	if (res == CsrfResult::ok)
		return true;
	svc_.stats.add("posthorn_spam_blocked_total", {cfg_.path, "csrf"});
	log(LogLevel::info, "spam_blocked", rq, LogField("kind", "csrf"), LogField("reason", to_string(res)));
	refuse(rq, 403, "csrf_invalid", "invalid or expired form token");
	return false;
}

void Endpoint::field_problems(const Request &rq,
    std::vector<std::pair<std::string, std::string>> &bad)
{
	for (const std::string &name : cfg_.required)
		if (!present(rq.fields, name))
			bad.emplace_back(name, "required");
	const std::string *email = field(rq.fields, email_field_);
	if (email && !trim(*email).empty() && !good_address(*email) &&
	    (bad.empty() || bad.back().first != email_field_))
		bad.emplace_back(email_field_, "invalid email format");
	for (const FilePart &f : rq.files)
		if (!type_allowed(f.content_type, cfg_.attachment_types)) {
			bad.emplace_back(f.field, "attachment type not allowed");
			break;
		}
	if (!rq.has_override)
		return;
	if (rq.to_override.empty())
		bad.emplace_back(TO_OVERRIDE_FIELD, "must contain at least one address");
	else if (rq.to_override.size() > kMaxOverride)
		bad.emplace_back(TO_OVERRIDE_FIELD, "too many addresses");
	for (const std::string &a : rq.to_override)
		if (!good_address(a)) {
			bad.emplace_back(TO_OVERRIDE_FIELD, "invalid email format");
			break;
		}
}

bool Endpoint::validate(Request &rq)
{
	std::vector<std::pair<std::string, std::string>> bad;
	field_problems(rq, bad);
	if (bad.empty()) {
		svc_.stats.add("posthorn_submissions_received_total", {cfg_.path});
		log(LogLevel::info, "submission_received", rq, LogField("transport", cfg_.transport));
		return true;
	}
	std::string names;
	for (const auto &[name, problem] : bad)
		names += (names.empty() ? "" : ",") + name;
	svc_.stats.add("posthorn_validation_failed_total", {cfg_.path});
	log(LogLevel::info, "validation_failed", rq, LogField("fields", names));
	finish(rq, json_validation(bad), "validation_failed");
	return false;
}

bool Endpoint::claim_idempotency(Request &rq)
{
	const char *key = api() ? rq.ex->header("Idempotency-Key") : nullptr;
	if (!key)
		return true;
	if (!idempotency_key_valid(key)) {
		refuse(rq, 400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters");
		return false;
	}
	std::string scoped = rq.key_id + ":" + key;
	Reply stored;
	switch (state_->idempotency.begin(scoped, sha256(rq.ex->body()), monotonic_now(), &stored)) {
	case IdempotencyCache::Begin::claimed:
		rq.idempotency = scoped;
		return true;
	case IdempotencyCache::Begin::replay:
		svc_.stats.add("posthorn_idempotent_replay_total", {cfg_.path});
		log(LogLevel::info, "idempotent_replay", rq, LogField("status", stored.status));
		stored.headers.emplace_back("Idempotency-Replayed", "true");
		rq.ex->send(stored);
		return false;
	case IdempotencyCache::Begin::in_flight:
		refuse(rq, 409, "idempotency_in_flight", "a request with this Idempotency-Key is in progress");
		return false;
	case IdempotencyCache::Begin::reused:
		refuse(rq, 422, "idempotency_key_reused", "Idempotency-Key was used with a different body");
		return false;
	}
	return false;
}

std::string Endpoint::render_body(const Fields &fields) const
{
	std::string body = body_.render(fields);
	std::string extra = additional_fields(fields, used_);
	if (extra.empty())
		return body.empty() ? "(no message)\n" : body; /* a message needs a body */
	if (!body.empty())
		body += body.back() == '\n' ? "\n" : "\n\n";
	return body + extra;
}

Message Endpoint::prepare(const Request &rq) const
{
	Message m;
	m.id = rq.id;
	m.envelope_from = envelope_from_;
	if (rq.has_override)
		for (const std::string &a : rq.to_override)
			m.recipients.emplace_back(trim(a));
	else
		m.recipients = recipients_;
	m.from = cfg_.from;
	const std::string *reply_to = field(rq.fields, reply_to_field_);
	if (reply_to && good_address(*reply_to))
		m.reply_to = std::string(trim(*reply_to));
	m.subject = header_text(subject_.empty() ? "Submission to " + cfg_.path : subject_.render(rq.fields));
	m.text_body = render_body(rq.fields);
	for (const FilePart &f : rq.files)
		m.attachments.push_back({safe_filename(f.filename), f.content_type, f.data});
	m.source = cfg_.path;
	m.transport = cfg_.transport;
	m.delivery = cfg_.delivery;
	m.idempotency_key = rq.id;
	m.created = int64_t(time(nullptr));
	return m;
}

Reply Endpoint::dry_run_reply(const Request &rq, const Message &m) const
{
	JsonOut p;
	p.open().key("from").str(m.from).key("to").strings(m.recipients).key("reply_to").str(m.reply_to);
	p.key("subject").str(m.subject).key("body_text").str(m.text_body).key("body_html").str(m.html_body);
	p.close();
	JsonOut j;
	j.open().key("status").str("dry_run").key("submission_id").str(rq.id);
	j.key("prepared_message").raw(p.take()).close();
	Reply r = json_status(200, "dry_run", rq.id);
	r.body = j.take() + "\n";
	return r;
}

Reply Endpoint::success_reply(const Request &rq) const
{
	if (cfg_.delivery == Delivery::queue)
		return json_status(202, "queued", rq.id);
	return json_status(200, "ok", rq.id);
}

void Endpoint::submit(const std::shared_ptr<Request> &rq)
{
	Message m = prepare(*rq);
	if (cfg_.dry_run) {
		log(LogLevel::info, "submission_dry_run", *rq);
		finish(*rq, dry_run_reply(*rq, m));
		return;
	}
	std::string why;
	if (!message_validate(m, why)) {
		failed(*rq, "rejected", why); /* a bug here, or input a check above missed */
		return;
	}
	auto self = shared_from_this();
	auto done = [self, rq](const SubmitResult &r) {
		try {
			self->submitted(*rq, r);
		} catch (const std::exception &e) { /* from the event loop: never past here */
			log_warnx("http: answering %s failed: %s", rq->id.c_str(), e.what());
		}
	};
	bool ok = svc_.submitter.submit(m, done, &why);
	if (!ok)
		failed(*rq, "unavailable", why);
}

void Endpoint::submitted(Request &rq, const SubmitResult &r)
{
	double secs = monotonic_now() - rq.started;
	auto ms = int64_t(secs * 1000);
	switch (r.status) {
	case SubmitStatus::queued:
		log(LogLevel::info, "submission_queued", rq, LogField("latency_ms", ms));
		finish(rq, success_reply(rq));
		return;
	case SubmitStatus::sent:
		svc_.stats.add("posthorn_submissions_sent_total", {cfg_.path, cfg_.transport});
		svc_.stats.observe("posthorn_send_latency_seconds", {cfg_.path, cfg_.transport}, secs);
		log(LogLevel::info, "submission_sent", rq, LogField("latency_ms", ms),
		    LogField("transport_message_id", r.provider_id));
		finish(rq, json_status(200, "ok", rq.id));
		return;
	case SubmitStatus::temp_fail:
		failed(rq, cfg_.delivery == Delivery::sync ? "transient" : "unavailable", r.detail);
		return;
	case SubmitStatus::perm_fail:
		failed(rq, "permanent", r.detail);
		return;
	case SubmitStatus::rejected:
		failed(rq, "rejected", r.detail);
		return;
	}
}

void Endpoint::failed(Request &rq, const char *error_class, const std::string &detail)
{
	svc_.stats.add("posthorn_submissions_failed_total", {cfg_.path, cfg_.transport, error_class});
	auto ms = int64_t((monotonic_now() - rq.started) * 1000);
	if (cfg_.log_failed_submissions)
		log(LogLevel::error, "submission_failed", rq, LogField("error_class", error_class),
		    LogField("error", detail), LogField("latency_ms", ms), LogField("form", form_for_log(rq)));
	else
		log(LogLevel::error, "submission_failed", rq, LogField("error_class", error_class),
		    LogField("error", detail), LogField("latency_ms", ms));
	if (std::string_view(error_class) == "rejected")
		refuse(rq, 500, "internal_error", "submission could not be processed");
	else if (cfg_.delivery == Delivery::sync)
		refuse(rq, 502, "delivery_failed", "submission could not be delivered");
	else
		refuse(rq, 500, "queue_unavailable", "submission could not be queued, try again later");
}

std::string Endpoint::form_for_log(const Request &rq) const
{
	JsonOut j;
	j.open();
	for (const auto &[name, value] : rq.fields)
		if (name != cfg_.honeypot && name != CSRF_FIELD)
			j.key(name).str(value);
	if (rq.has_override)
		j.key(TO_OVERRIDE_FIELD).strings(rq.to_override);
	return j.close().take();
}

void Endpoint::finish(Request &rq, Reply reply, std::string_view code)
{
	if (!rq.idempotency.empty()) {
		if (reply.status >= 200 && reply.status < 300)
			state_->idempotency.complete(rq.idempotency, reply, monotonic_now());
		else
			state_->idempotency.abandon(rq.idempotency);
		rq.idempotency.clear();
	}
	if (rq.html) {
		bool ok = reply.status < 300;
		const std::string &to = ok ? cfg_.redirect_success : cfg_.redirect_error;
		if (!to.empty()) {
			rq.ex->send(redirect(ok ? to : with_error(to, code.empty() ? "error" : code)));
			return;
		}
	}
	rq.ex->send(reply);
}

} // namespace posthorn::http
