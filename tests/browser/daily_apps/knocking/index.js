// Daily's knocking demo, following the code of Daily's guide "Add a 'knocking' feature to a
// custom Daily video call app" (Daily blog, 2023; the demo is daily-samples-js,
// samples/client-sdk/knocking). The functions the guide prints are kept as it shows them; the
// small UI helpers it leaves out (showing and hiding elements, removing a list entry, leaving)
// are written here the obvious way. Nothing in this file knows about Anteroom.
let callObject;

const logEvent = (e) => console.log('Daily event: ', e);

// UI helpers (the guide elides these) ------------------------------------------------------------

const show = (id) => document.getElementById(id).classList.remove('hide');
const hide = (id) => document.getElementById(id).classList.add('hide');
const showLoadingText = (type) => show(type === 'owner' ? 'ownerLoading' : 'guestLoading');
const hideLoadingText = (type) => hide(type === 'owner' ? 'ownerLoading' : 'guestLoading');
const showWaitingRoomText = () => show('guestKnocking');
const hideWaitingRoomText = () => hide('guestKnocking');
const showRejectedFromCallText = () => show('guestDenied');
const hideRejectedFromCallText = () => hide('guestDenied');
const showOwnerPanel = () => show('ownerKnockingButtons');
const hideOwnerPanel = () => hide('ownerKnockingButtons');
const showLeaveButton = () => show('leaveButton');
const hideLeaveButton = () => hide('leaveButton');
const showVideos = () => {
  for (const v of document.getElementsByClassName('video-container')) v.classList.remove('hide');
};
const hideVideos = () => {
  for (const v of document.getElementsByClassName('video-container')) v.classList.add('hide');
};
const showForms = () => {
  for (const f of document.getElementsByClassName('form-container')) f.classList.remove('invisible');
};
const hideForms = (formToHide) => {
  for (const f of document.getElementsByClassName(`form-container ${formToHide}`)) {
    f.classList.add('invisible');
  }
};

// Video ------------------------------------------------------------------------------------------

const findVideoForParticipant = (sessionId) => {
  const videos = document.getElementsByTagName('video');
  return Array.from(videos).find((v) => v.session_id === sessionId) || null;
};

const addParticipantVideo = (participant) => {
  if (!participant) return;
  // If the participant is an owner, we'll put them up top; otherwise, in the guest container
  const videoContainer = document.getElementById(
    participant.owner ? 'ownerVideo' : 'guestVideo'
  );

  let vid = findVideoForParticipant(participant.session_id);
  // Only add the video if it's not already in the UI
  if (!vid && participant.video) {
    // Create video element, set attributes
    vid = document.createElement('video');
    vid.session_id = participant.session_id;
    vid.style.width = '100%';
    vid.autoplay = true;
    vid.muted = true;
    vid.playsInline = true;
    // Append video to container (either guest or owner section)
    videoContainer.appendChild(vid);
    // Set video track
    vid.srcObject = new MediaStream([participant.tracks.video.persistentTrack]);
  }
};

const checkAccessLevel = () => callObject.accessState().access.level;

const handleParticipantUpdate = (e) => {
  // Don't use this event for participants who are waiting to join, or for the local participant
  if (checkAccessLevel() === 'lobby') return;
  const participant = e?.participant;
  if (!participant || participant.local) return;
  if (!findVideoForParticipant(participant.session_id)) addParticipantVideo(participant);
};

const handleParticipantLeft = (e) => {
  const vid = findVideoForParticipant(e?.participant?.session_id);
  if (vid) vid.remove();
};

const handleLeftMeeting = (e) => {
  logEvent(e);
  showForms();
  hideVideos();
  hideLeaveButton();
};

const leaveCall = async () => {
  if (!callObject) return;
  await callObject.leave();
  await callObject.destroy();
  callObject = null;
  [...document.getElementsByTagName('video')].forEach((v) => v.remove());
  hideOwnerPanel();
  hideWaitingRoomText();
  hideRejectedFromCallText();
  showForms();
};

// Owner ------------------------------------------------------------------------------------------

const handleOwnerJoinedMeeting = (e) => {
  const participant = e?.participants?.local;
  if (!participant) return;

  if (participant.owner) {
    console.log('This participant is a meeting owner! :)');
  } else {
    // this means they used a non-owner token in the owner form
    console.error('This participant is not a meeting owner!');
  }

  // Update UI
  hideLoadingText('owner');
  hideForms('guest');
  showOwnerPanel();
  showVideos();
  showLeaveButton();

  // This demo assumes videos are on when the call starts since there aren't media controls in the UI.
  if (!participant?.tracks?.video) {
    // Update the room's settings to enable cameras by default.
    console.error(
      'Video is off. Ensure "start_video_off" setting is false for your room'
    );
    return;
  }
  // Add video tile for owner's local video
  addParticipantVideo(participant);
};

const addWaitingParticipant = (e) => {
  const list = document.getElementById('knockingList');
  const li = document.createElement('li');
  li.setAttribute('id', e.participant.id);
  li.innerHTML = `${e.participant.name}: ${e.participant.id}`;
  // Add new list item to ul element for owner to see
  list.appendChild(li);
};

const updateWaitingParticipant = (e) => {
  logEvent(e);
  // The guest is not waiting any more, whether they were accepted or rejected
  const li = document.getElementById(e.participant.id);
  if (li) li.remove();
};

const addOwnerEvents = () => {
  callObject
    .on('joined-meeting', handleOwnerJoinedMeeting)
    .on('left-meeting', handleLeftMeeting)
    .on('participant-joined', logEvent)
    .on('participant-updated', handleParticipantUpdate)
    .on('participant-left', handleParticipantLeft)
    .on('waiting-participant-added', addWaitingParticipant)
    .on('waiting-participant-updated', logEvent)
    .on('waiting-participant-removed', updateWaitingParticipant)
    .on('error', logEvent);
};

const createOwnerCall = async ({ name, url, token }) => {
  showLoadingText('owner');

  // Create call object
  callObject = window.DailyIframe.createCallObject();

  // Add Daily event listeners (not an exhaustive list)
  addOwnerEvents();

  // Let owner join the meeting
  callObject.join({ userName: name, url, token }).catch((error) => {
    console.log('Owner join failed: ', error);
  });
};

const submitOwnerForm = (e) => {
  e.preventDefault();
  // Do not try to create new call object if it already exists
  if (callObject) return;
  // Get form values
  const { target } = e;
  const name = target.ownerName.value;
  const url = target.ownerURL.value;
  const token = target.token.value;

  // Log error if any form input is empty
  if (!name.trim() || !url.trim() || !token.trim()) {
    console.error('Fill out form');
    return;
  }
  // Initialize the call object and let the owner join/enter the call
  createOwnerCall({ name, url, token });
};

const allowAccess = () => {
  console.log('allow guest in');
  // Retrieve list of waiting participants
  const waiting = callObject.waitingParticipants();

  const waitList = Object.keys(waiting);

  // there is also a updateWaitingParticipants() method to accomplish this in one step
  waitList.forEach((id) => {
    callObject.updateWaitingParticipant(id, {
      grantRequestedAccess: true,
    });
  });
};

const denyAccess = () => {
  console.log('deny guest access');
  const waiting = callObject.waitingParticipants();
  Object.keys(waiting).forEach((id) => {
    callObject.updateWaitingParticipant(id, {
      grantRequestedAccess: false,
    });
  });
};

// Guest ------------------------------------------------------------------------------------------

const handleRejection = (e) => {
  logEvent(e);
  // The request to join (knocking) was rejected :(
  if (e.errorMsg === 'Join request rejected') {
    // Update UI so the guest knows their request was denied
    hideWaitingRoomText();
    showRejectedFromCallText();
  }
};

const handleAccessStateUpdate = (e) => {
  // If the access level has changed to full, the knocking participant has been let in.
  if (e.access.level === 'full') {
    // Add the participant's video (it will only be added if it doesn't already exist)
    const { local } = callObject.participants();
    addParticipantVideo(local);
    // Update messaging in UI
    hideWaitingRoomText();
  } else {
    logEvent(e);
  }
};

const handleGuestJoined = (e) => {
  // Update UI to show they're now in the waiting room
  hideLoadingText('guest');
  hideForms('owner');
  showVideos();
  showWaitingRoomText();
  showLeaveButton();

  // Request full access to the call (i.e. knock to enter)
  callObject.requestAccess({ name: e?.participants?.local?.user_name });
};

const addGuestEvents = () => {
  callObject
    .on('joined-meeting', handleGuestJoined)
    .on('left-meeting', logEvent)
    .on('participant-joined', logEvent)
    .on('participant-updated', handleParticipantUpdate)
    .on('participant-left', handleParticipantLeft)
    .on('error', handleRejection)
    .on('access-state-updated', handleAccessStateUpdate);
};

const createGuestCall = async ({ name, url }) => {
  showLoadingText('guest');

  // Create call object
  callObject = window.DailyIframe.createCallObject();

  // Add Daily event listeners (not an exhaustive list)
  addGuestEvents();

  try {
    // Pre-authenticate the guest so we can confirm they need to knock before calling join() method
    await callObject.preAuth({ userName: name, url });

    // Confirm that the guest actually needs to knock
    const permissions = checkAccessLevel();
    console.log('access level: ', permissions);

    // If they're in the lobby, they need to knock
    if (permissions === 'lobby') {
      // Guests must call .join() before they can knock to enter the call
      await callObject.join();
    } else if (permissions === 'full') {
      // If the guest can join the call, it's probably not a private room.
      hideLoadingText('guest');
      await callObject.join();
    } else {
      console.error('Something went wrong while joining.');
    }
  } catch (error) {
    console.log('Guest knocking failed: ', error);
  }
};

const submitKnockingForm = (e) => {
  e.preventDefault();

  // Do not try to create new call object if it already exists
  if (callObject) return;

  // Get form values
  const { target } = e;
  const name = target.guestName.value;
  const url = target.guestURL.value;

  // Log error if either form input is empty
  if (!name.trim() || !url.trim()) {
    console.error('Fill out form');
    return;
  }

  // If the user is trying to join after a failed attempt, hide the previous error message
  hideRejectedFromCallText();

  // Initialize guest call so they can knock to enter
  createGuestCall({ name, url });
};

// Event listeners --------------------------------------------------------------------------------

const knockingForm = document.getElementById('knockingForm');
knockingForm.addEventListener('submit', submitKnockingForm);

const ownerForm = document.getElementById('ownerForm');
ownerForm.addEventListener('submit', submitOwnerForm);

const allowAccessButton = document.getElementById('allowAccessButton');
allowAccessButton.addEventListener('click', allowAccess);

const denyAccessButton = document.getElementById('denyAccessButton');
denyAccessButton.addEventListener('click', denyAccess);

const leaveButton = document.getElementById('leaveButton');
leaveButton.addEventListener('click', leaveCall);
