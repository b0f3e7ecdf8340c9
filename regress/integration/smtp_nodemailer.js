// Sends one message the way Ghost does (nodemailer, STARTTLS on a submission
// port, AUTH): text, HTML and an attachment, optionally with Cc and Bcc
// recipients (comma-separated; nodemailer puts Bcc in RCPT TO only). Usage:
//   NODE_PATH=<dir>/node_modules node smtp_nodemailer.js PORT USER PASS CA_FILE [CC [BCC]]
const fs = require("fs");
const nodemailer = require("nodemailer");

const [port, user, pass, caFile, cc, bcc] = process.argv.slice(2);
const transport = nodemailer.createTransport({
  host: "127.0.0.1",
  port: Number(port),
  secure: false,
  requireTLS: true,
  auth: { user, pass },
  tls: { ca: [fs.readFileSync(caFile)], servername: "localhost" },
});

transport
  .sendMail({
    from: '"Ghost Blog" <noreply@example.com>',
    replyTo: "editor@example.com",
    to: "reader@example.org",
    ...(cc ? { cc } : {}),
    ...(bcc ? { bcc } : {}),
    subject: "Welcome to the blog — ünïcödé",
    text: "Plain text body\nsecond line",
    html: "<p>HTML <b>body</b> — ünïcödé</p>",
    attachments: [{ filename: "notes.txt", content: "attachment content\n", contentType: "text/plain" }],
  })
  .then((info) => {
    console.log(JSON.stringify({ response: info.response, accepted: info.accepted }));
  })
  .catch((err) => {
    console.error(String(err));
    process.exit(1);
  });
