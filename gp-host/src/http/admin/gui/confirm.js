// The confirmation dialog: every action that changes something asks here first.

import { setCodeText, setText } from './dom.js';

const confirmBox = document.getElementById('confirm');
const confirmTitle = document.getElementById('confirm-title');
const confirmText = document.getElementById('confirm-text');
const confirmYes = document.getElementById('confirm-yes');
const confirmNo = document.getElementById('confirm-no');
const reasonField = document.getElementById('confirm-reason-field');
const reasonInput = document.getElementById('confirm-reason');
let confirmDone = null;

// Asks in the page. Resolves to `{ reason }` when confirmed, `null` when cancelled.
export function ask({ title, text, yes, danger, reason }) {
  if (confirmDone) confirmDone(null);
  setText(confirmTitle, title);
  setCodeText(confirmText, text);
  setText(confirmYes, yes || 'Confirm');
  confirmYes.className = 'btn ' + (danger ? 'btn-danger' : 'btn-primary');
  reasonField.hidden = !reason;
  reasonInput.value = '';
  confirmBox.hidden = false;
  (reason ? reasonInput : confirmNo).focus();
  return new Promise((resolve) => {
    confirmDone = (answer) => {
      confirmDone = null;
      confirmBox.hidden = true;
      resolve(answer);
    };
  });
}

// Closes the dialog if it is open, as if cancelled.
export function cancelAsking() {
  if (confirmDone) confirmDone(null);
}

confirmYes.addEventListener('click', () => {
  if (confirmDone) confirmDone({ reason: reasonInput.value.trim() });
});
confirmNo.addEventListener('click', cancelAsking);
confirmBox.addEventListener('click', (e) => {
  if (e.target === confirmBox && confirmDone) confirmDone(null);
});
document.addEventListener('keydown', (e) => {
  if (!confirmDone) return;
  if (e.key === 'Escape') confirmDone(null);
  if (e.key === 'Enter' && e.target === reasonInput) confirmDone({ reason: reasonInput.value.trim() });
});
